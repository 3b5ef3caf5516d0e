// Interop test: malformed input over a real loopback WebSocket (spec README decision 3).
//
// Raw `ws` connections send what a broken or hostile peer would: truncated APDUs, a wrong CLA/INS, an Lc
// larger than the data, unknown method bytes, a request of the largest advertised size with a bad body. Each
// must get an error status (bit 7 set) ending `90 00`. A message over the advertised request size and a text
// frame close that connection (the device never buffers more than one request of the advertised size);
// afterwards a fresh connection of the real client is served normally.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { call, connectTap, deviceLog, expectOkBody, hex, require, startDevice } from './harness.mjs';

const WebSocket = require('ws');

let device;

before(async () => {
  device = await startDevice();
});

after(async () => {
  if (device) await device.stop();
});

/** Opens a raw connection; `exchange(bytes)` sends one binary message and resolves with the answer or 'closed'. */
async function rawConnection() {
  const ws = new WebSocket(`ws://127.0.0.1:${device.port}`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const inbox = [];
  let waiting = null;
  let closed = false;
  ws.on('message', (data, isBinary) => {
    const item = { data: Buffer.from(data), isBinary };
    if (waiting) {
      const resolve = waiting;
      waiting = null;
      resolve(item);
    } else inbox.push(item);
  });
  let closeCode = null;
  ws.on('close', (code) => {
    closed = true;
    closeCode = code;
    if (waiting) {
      const resolve = waiting;
      waiting = null;
      resolve('closed');
    }
  });
  return {
    ws,
    exchange(payload, { binary = true } = {}) {
      return new Promise((resolve, reject) => {
        if (inbox.length) return resolve(inbox.shift());
        if (closed) return resolve('closed');
        const timer = setTimeout(() => reject(new Error(`no answer to ${hex(payload)} within 3 s${deviceLog()}`)), 3000);
        waiting = (item) => {
          clearTimeout(timer);
          resolve(item);
        };
        ws.send(payload, { binary });
      });
    },
    close() {
      ws.close();
    },
    closeCode: () => closeCode,
  };
}

const h = (s) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const MALFORMED = [
  ['empty message', Buffer.alloc(0)],
  ['truncated header', h('a2ca00')],
  ['truncated path', h('a2ca000007 010003ffff')],
  ['wrong CLA', h('00ca000007 010003ffff0002')],
  ['wrong INS', h('a2b0000007 010003ffff0002')],
  ['Lc larger than the data', h('a2ca000020 010003ffff0002')],
  ['unknown method 05', h('a2ca000007 050003ffff0002')],
  ['unknown method ff', h('a2da000007 ff0003ffff0002')],
  // 1024 bytes, the largest request frame /1024//88 advertises: PUT /1024//36 with a body too long for it.
  ['largest request, bad body', Buffer.concat([h('a2da000000 030400ffff0024'), Buffer.alloc(1024 - 7)])],
];

/** An APDU of `len` bytes: PUT /1024//36 padded with zeros. */
const apduOf = (len) =>
  Buffer.concat([h('a2da0000' + ((len - 5) % 256).toString(16).padStart(2, '0') + '030400ffff0024'), Buffer.alloc(len - 12)]);

test('every malformed APDU gets an error status ending 90 00 on the same connection', async () => {
  const conn = await rawConnection();
  try {
    for (const [what, bytes] of MALFORMED) {
      const answer = await conn.exchange(bytes);
      assert.notEqual(answer, 'closed', `${what}: the device closed the connection instead of answering`);
      assert.ok(answer.isBinary, `${what}: answered with a text frame`);
      const r = answer.data;
      assert.ok(r.length >= 3, `${what}: answer ${hex(r)} too short`);
      assert.ok(r[0] & 0x80, `${what}: status 0x${r[0].toString(16)} is not an error (answer ${hex(r)})`);
      assert.equal(hex(r.subarray(r.length - 2)), '9000', `${what}: answer ${hex(r)} does not end 90 00`);
    }
    // The same connection still works: GET /3//3.
    const ok = await conn.exchange(h('a2ca000007 010003ffff0003'));
    assert.equal(ok.data[0], 0x00, `GET /3//3 after the malformed ones: ${hex(ok.data)}`);
  } finally {
    conn.close();
  }
});

test('a message over the advertised request size closes that connection with 1009, unbuffered', async () => {
  for (const len of [5 + 1024 + 1, 3000, 1 << 20]) {
    const conn = await rawConnection();
    const answer = await conn.exchange(apduOf(len));
    assert.equal(answer, 'closed', `${len} bytes: expected a close, got ${answer.data && hex(answer.data)}`);
    // The device closes with 1009 at once; a peer still sending a large message may see the
    // TCP reset first (1006), the connection being closed either way.
    const expected = len <= 4096 ? [1009] : [1009, 1006];
    assert.ok(expected.includes(conn.closeCode()), `${len} bytes: close code ${conn.closeCode()}`);
  }
});

test('a text frame closes that connection cleanly', async () => {
  const conn = await rawConnection();
  const answer = await conn.exchange('GET /3//2', { binary: false });
  assert.equal(answer, 'closed', `a text frame must close the connection, got ${answer.data && hex(answer.data)}`);
});

test('after all that, a fresh connection of the real client is served', async () => {
  const client = await connectTap(device.port, { label: 'fresh' });
  try {
    const serial = expectOkBody(
      'GET /3//2 on a fresh connection',
      await call('GET /3//2', () => client.tap.service.device.getSerialNumber()),
    );
    assert.ok(serial.length > 0);
  } finally {
    await client.close();
  }
});
