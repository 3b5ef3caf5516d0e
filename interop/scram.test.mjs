// Interop test: the encrypted session with the real npm client `@iotize/tap@2.7.0` over WebSocket.
// SCRAM enabled the client's way (hash iterations /1024//42, security option 0x10, the admin's SCRAM
// record written with the client's own ScramAuth.createScramPasswordKey), then `tap.auth.login` with
// SCRAM, encrypted reads and writes equal to the clear ones, the IV refresh (period 3 over 10 calls),
// the per-request IV mode (period 1), logout; `tap.encryption.start()` as anonymous grants nothing
// more than anonymous. Negative tests on the raw socket of the client: a captured tunnel frame
// replayed byte for byte is refused (81), a frame with a flipped bit executes nothing (80) and the
// session goes on, a clear request in the SCRAM session runs as anonymous, a wrong SCRAM proof is
// 81 and counts towards the lock-out.
//
// Every request is made by the client's own services; the negative tests send the client's own
// captured frames, altered, on its own socket.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_ID,
  ResultCode,
  call,
  connectTap,
  expectOkBody,
  expectStatus,
  hex,
  login,
  logout,
  require,
  sleep,
  startDevice,
  wireLog,
} from './harness.mjs';

const { ScramAuth } = require('@iotize/tap/auth');

const ITERATIONS = 1000;
const SALT = Uint8Array.from([0xa1, 0xb2, 0xc3, 0xd4]);

let device;
/** Values read in clear as admin before SCRAM is enabled: the encrypted reads must equal them. */
let clear;

/** The values the encrypted reads are compared with, read by `tap`'s own services. */
async function readValues(tap, when) {
  const get = async (what, fn) => expectOkBody(`${when}: ${what}`, await call(what, fn));
  return {
    serial: await get('GET /3//2', () => tap.service.device.getSerialNumber()),
    manufacturer: await get('GET /3//0', () => tap.service.device.getManufacturer()),
    firmware: await get('GET /3//3', () => tap.service.device.getFirmwareVersion()),
    appName: await get('GET /1024//9', () => tap.service.interface.getAppName()),
    inactivity: await get('GET /1024//34', () => tap.service.interface.getHostInactivityPeriod()),
  };
}

before(async () => {
  device = await startDevice();
  const conn = await connectTap(device.port, { label: 'setup' });
  const { tap } = conn;
  await login(tap, 'admin', 'admin');
  expectOkBody('PUT /1024//9', await call('PUT /1024//9', () => tap.service.interface.putAppName('clear')));
  clear = await readValues(tap, 'clear');
  expectOkBody('PUT /1024//42', await call('PUT /1024//42', () => tap.service.scram.putHashIteration(ITERATIONS)));
  assert.equal(expectOkBody('GET /1024//42', await call('GET /1024//42', () => tap.service.scram.getHashIteration())), ITERATIONS);
  // SCRAM on: from now on a password is written as the 36-byte record.
  const options = expectOkBody('GET /1024//6', await call('GET /1024//6', () => tap.service.interface.getSecurityOptions()));
  expectOkBody(
    'PUT /1024//6',
    await call('PUT /1024//6', () => tap.service.interface.putSecurityOptions({ ...options, scramActivated: true })),
  );
  const record = ScramAuth.createScramPasswordKey('admin', { salt: SALT, iterationNumber: ITERATIONS });
  assert.equal(record.length, 36);
  expectOkBody('POST /1025/65535/2', await call('POST /1025/65535/2', () => tap.service.group.changePasswordKey(ADMIN_ID, record)));
  await logout(tap);
  await conn.close();
});

after(async () => {
  if (device) await device.stop();
});

/** A client logged in as admin with SCRAM, its encryption running. */
async function scramSession(label, period) {
  const conn = await connectTap(device.port, { label });
  if (period !== undefined) conn.tap.encryption.setInitializationVectorRefreshPeriod(period);
  await login(conn.tap, 'admin', 'admin');
  assert.equal(conn.tap.encryption.isStarted, true, `encryption runs after a SCRAM login${wireLog()}`);
  return conn;
}

/** Sends a raw APDU on the client's own transport; resolves with the response bytes. */
function sendRaw(protocol, apdu) {
  const sent = protocol.send(apdu);
  if (typeof sent.subscribe !== 'function') return sent;
  return new Promise((resolve, reject) => sent.subscribe({ next: resolve, error: reject }));
}

/** The tunnel frames (GET /1024//48 or //44) the client sent from index `from` on. */
const tunnelFrames = (conn, from = 0) =>
  conn.frames.slice(from).filter((f) => f[0] === 1 && f.readUInt16BE(1) === 1024 && [44, 48].includes(f.readUInt16BE(5)));

test('SCRAM login: ten encrypted reads and writes equal the clear ones', async () => {
  const conn = await scramSession('scram');
  const { tap } = conn;
  const before = conn.frames.length;
  const group = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(group, ADMIN_ID, `inside the tunnel the admin is logged in${wireLog()}`);
  // Five encrypted reads: what the clear ones gave.
  assert.deepEqual(await readValues(tap, 'encrypted'), clear, `encrypted reads equal the clear ones${wireLog()}`);
  for (let i = 0; i < 5; i++) {
    const name = `app${i}`;
    expectOkBody('PUT /1024//9', await call('PUT /1024//9', () => tap.service.interface.putAppName(name)));
    assert.equal(expectOkBody('GET /1024//9', await call('GET /1024//9', () => tap.service.interface.getAppName())), name);
  }
  // Every one of those went through the tunnel.
  assert.ok(tunnelFrames(conn, before).length >= 16, `tunnelled: ${tunnelFrames(conn, before).length}${wireLog()}`);
  await logout(tap);
  await conn.close();
});

test('the IV refresh every 3 calls, over 10 calls', async () => {
  const conn = await scramSession('iv3', 3);
  const { tap } = conn;
  for (let i = 0; i < 10; i++) {
    expectOkBody(`GET /3//2 #${i}`, await call('GET /3//2', () => tap.service.device.getSerialNumber()));
  }
  await logout(tap);
  await conn.close();
});

test('the per-request IV mode (period 1)', async () => {
  const conn = await scramSession('iv1', 1);
  const { tap } = conn;
  const before = conn.frames.length;
  for (let i = 0; i < 4; i++) {
    expectOkBody(`GET /3//2 #${i}`, await call('GET /3//2', () => tap.service.device.getSerialNumber()));
  }
  const withIv = tunnelFrames(conn, before).filter((f) => f.readUInt16BE(5) === 44);
  assert.ok(withIv.length >= 4, `GET /1024//44 frames: ${withIv.length}${wireLog()}`);
  // The logout, encrypted, awaited before encryption stops: the library's own
  // `tap.auth.logout()` stops encryption while the answer is on its way, and in this mode
  // it then cannot decode it (it keeps the device's previous IV).
  expectOkBody('POST /1024//1', await call('POST /1024//1', () => tap.service.interface.logout()));
  tap.encryption.stop();
  const group = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(group, 0, `logged out${wireLog()}`);
  await conn.close();
});

test('a clear request in the SCRAM session runs as anonymous', async () => {
  const conn = await scramSession('clear');
  const { tap } = conn;
  tap.encryption.pause();
  const group = expectOkBody('clear GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(group, 0, `a clear request runs with anonymous rights${wireLog()}`);
  expectStatus(
    'clear PUT /1024//9',
    await call('PUT /1024//9', () => tap.service.interface.putAppName('clear')),
    ResultCode.UNAUTHORIZED,
  );
  tap.encryption.resume();
  assert.equal(expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId())), ADMIN_ID);
  await logout(tap);
  await conn.close();
});

test('a replayed tunnel frame is refused, a flipped bit executes nothing, the session goes on', async () => {
  const conn = await scramSession('replay');
  const { tap, protocol } = conn;
  const before = conn.frames.length;
  expectOkBody('PUT /1024//9', await call('PUT /1024//9', () => tap.service.interface.putAppName('first')));
  const [captured] = tunnelFrames(conn, before);
  assert.ok(captured, `the PUT went through the tunnel${wireLog()}`);
  expectOkBody('PUT /1024//9', await call('PUT /1024//9', () => tap.service.interface.putAppName('second')));
  // The first PUT again, byte for byte, on the client's own socket.
  const apdu = (frame) => Buffer.concat([Buffer.from([0xa2, 0xca, 0, 0, frame.length % 256]), frame]);
  const replayed = Buffer.from(await sendRaw(protocol, apdu(captured)));
  assert.equal(hex(replayed), '819000', `a replay is refused with 81${wireLog()}`);
  // A flipped bit in the ciphertext: 80, nothing executed.
  const flipped = Buffer.from(captured);
  flipped[flipped.length - 1] ^= 0x01;
  const damaged = Buffer.from(await sendRaw(protocol, apdu(flipped)));
  assert.equal(hex(damaged), '809000', `a damaged frame is refused with 80${wireLog()}`);
  // Neither changed anything, and the session goes on.
  assert.equal(expectOkBody('GET /1024//9', await call('GET /1024//9', () => tap.service.interface.getAppName())), 'second');
  await logout(tap);
  await conn.close();
});

test('tap.encryption.start() as anonymous grants nothing more than anonymous', async () => {
  const conn = await connectTap(device.port, { label: 'anon' });
  const { tap } = conn;
  await call('tap.encryption.start()', () => tap.encryption.start());
  assert.equal(tap.encryption.isStarted, true);
  const group = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(group, 0, `the anonymous key grants nothing${wireLog()}`);
  expectStatus('PUT /1024//9', await call('PUT /1024//9', () => tap.service.interface.putAppName('anon')), ResultCode.UNAUTHORIZED);
  expectOkBody('GET /3//2', await call('GET /3//2', () => tap.service.device.getSerialNumber()));
  tap.encryption.stop();
  await conn.close();
});

test('a wrong SCRAM proof is 81 and counts towards the lock-out', async () => {
  const conn = await connectTap(device.port, { label: 'wrong' });
  const { tap } = conn;
  let failures = 0;
  for (let i = 0; i < 3; i++) {
    try {
      await tap.auth.login({ username: 'admin', password: 'wrong' });
      assert.fail('a wrong password logged in');
    } catch (err) {
      if (err.code === 'ERR_ASSERTION') throw err;
      failures++;
    }
  }
  assert.equal(failures, 3);
  // Locked out now: even the right password is refused (A3) until the lock-out ends.
  const response = await call('GET /1024//40', () =>
    tap.service.scram.login({ username: 'admin', clientNonce: 1 }),
  );
  expectStatus('GET /1024//40 while locked out', response, ResultCode.SERVICE_UNAVAILABLE);
  await conn.close();
  await sleep(10);
});
