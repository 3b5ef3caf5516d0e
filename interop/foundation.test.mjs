// Interop test: the real npm client `@iotize/tap@2.7.0` over `@iotize/device-com-websocket.js@2.0.0`
// against the `port-linux` device binary, over a real loopback WebSocket.
//
// Every request below is produced by the client's own service / auth API (or, for the unknown-object check,
// by its generic ServiceCallRunner `tap.lwm2m.get(path)`), never by hand-made bytes. The transport is only
// observed (TX/RX hex is recorded for the failure messages), never altered.
//
// Environment:
//   LWM2M_DEVICE_BIN       device binary (default ../target/release/port-linux relative to this folder)
//   LWM2M_SEND_TIMEOUT_MS  per-request timeout of the client (default 2000; the client's own default is 500)
//   LWM2M_INTEROP_VERBOSE  if set, echo the device's stdout/stderr and every TX/RX APDU to stderr

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));

// Node 20 has no global WebSocket; the transport does `new WebSocket(url)` on the global object.
// `ws` delivers binary messages as Buffer (a Uint8Array), which is what the transport expects.
globalThis.WebSocket = require('ws');

// The packages ship UMD bundles whose sub-entry points are directories: load them through require().
const { Tap } = require('@iotize/tap');
require('@iotize/tap/service/all'); // registers tap.service.{device,interface,group,dataLog,...}
require('@iotize/tap/auth'); // registers tap.auth and tap.encryption
const { WebSocketProtocol } = require('@iotize/device-com-websocket.js');

const DEVICE_BIN = process.env.LWM2M_DEVICE_BIN
  ? path.resolve(process.env.LWM2M_DEVICE_BIN)
  : path.resolve(HERE, '../target/release/port-linux');
const READY_TIMEOUT_MS = 20_000;
const EXIT_TIMEOUT_MS = 5_000;
const SEND_TIMEOUT_MS = Number(process.env.LWM2M_SEND_TIMEOUT_MS || 2000);
const VERBOSE = !!process.env.LWM2M_INTEROP_VERBOSE;
const READY_LINE = /^listening on ws:\/\/127\.0\.0\.1:(\d{1,5})$/;

const ADMIN_ID = 0xffff;
const ANONYMOUS_ID = 0x0000;
const ResultCode = { OK: 0x00, UNAUTHORIZED: 0x81, NOT_FOUND: 0x84, NOT_ACCEPTABLE: 0x86 };

// ---------------------------------------------------------------------------------------------------------------
// helpers

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const hexStatus = (s) => (typeof s === 'number' ? '0x' + s.toString(16).padStart(2, '0') : String(s));
const statusName = (s) => {
  const name = Object.entries(ResultCode).find(([, v]) => v === s);
  return name ? `${hexStatus(s)} ${name[0]}` : hexStatus(s);
};

/** Ring buffer of the last APDUs exchanged, to show what the device answered when something fails. */
const wire = [];
const counts = { tx: 0, rx: 0, textFrames: 0 };
function record(dir, bytes) {
  if (dir === 'TX') counts.tx++;
  else counts.rx++;
  const line = `${dir} ${hex(bytes)}`;
  wire.push(line);
  if (wire.length > 12) wire.shift();
  if (VERBOSE) process.stderr.write(`[wire] ${line}\n`);
}
const wireLog = () => (wire.length ? `\n  last APDUs on the wire:\n    ${wire.join('\n    ')}` : '');

let device; // ChildProcess
let deviceExit; // Promise<{code, signal}>
let deviceOutput = ''; // stdout + stderr, for diagnostics
let protocol;
let tap;
let serialNumber; // from the device-info test, reused by the multi-request test

const deviceLog = () => {
  const tail = deviceOutput.split('\n').slice(-15).join('\n    ');
  return tail.trim() ? `\n  device output (tail):\n    ${tail}` : '';
};

/** Run a client call; turn transport/decoding failures into an assertion error that shows the wire. */
async function call(what, fn) {
  try {
    return await fn();
  } catch (err) {
    const cause = err && err.cause ? `\n  cause: ${err.cause.message || err.cause}` : '';
    assert.fail(`${what}: the client call threw ${err && (err.code || err.name)}: ${err && err.message}${cause}${wireLog()}`);
  }
}

/** Assert a TapResponse has the given status and return it. */
function expectStatus(what, response, expected) {
  assert.ok(response, `${what}: no response object`);
  assert.equal(
    response.status,
    expected,
    `${what}: expected status ${statusName(expected)}, device answered ${statusName(response.status)}` +
      ` (raw body 0x${hex(response.rawBody())})${wireLog()}`,
  );
  return response;
}

/** Assert success (status 0x00) and return the decoded body. */
function expectOkBody(what, response) {
  expectStatus(what, response, ResultCode.OK);
  try {
    return response.body();
  } catch (err) {
    assert.fail(`${what}: status OK but the client could not decode the body 0x${hex(response.rawBody())}: ${err.message}${wireLog()}`);
  }
}

function assertPrintableAscii(what, value) {
  assert.equal(typeof value, 'string', `${what}: expected a string, got ${typeof value}${wireLog()}`);
  assert.ok(value.length > 0, `${what}: empty string${wireLog()}`);
  assert.match(value, /^[\x20-\x7e]+$/, `${what}: not printable ASCII: ${JSON.stringify(value)} (0x${Buffer.from(value, 'latin1').toString('hex')})${wireLog()}`);
}

/** The TapResponse carried by an error thrown by the client (TapResponseStatusError, or a TapAuthError wrapping one). */
function responseOfError(err) {
  for (let e = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (e.response && typeof e.response.status === 'number') return e.response;
  }
  return undefined;
}
const statusOfError = (err) => responseOfError(err)?.status;
/**
 * "POST /1024/65535/0"-like text for the request of a TapResponse (the client keeps the request frame it sent).
 * The instance is always printed: 65535 is both "no instance" (/1024//0) and the admin group (/1025/65535/4).
 */
function requestOfResponse(response) {
  const h = response?.request?.header;
  if (!h) return '?';
  const method = { 1: 'GET', 2: 'POST', 3: 'PUT' }[h.methodType] ?? `method ${h.methodType}`;
  return `${method} /${h.path.objectId}/${h.path.objectInstanceId}/${h.path.resourceId}`;
}

function waitForReadyLine(child) {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let settled = false;
    const finish = (fn, v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(v);
    };
    const timer = setTimeout(
      () => finish(reject, new Error(`device did not print "listening on ws://127.0.0.1:PORT" within ${READY_TIMEOUT_MS} ms${deviceLog()}`)),
      READY_TIMEOUT_MS,
    );
    child.stdout.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let nl;
      while (!settled && (nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        const m = READY_LINE.exec(line);
        if (m) {
          const port = Number(m[1]);
          if (port > 0 && port < 65536) finish(resolve, port);
          else finish(reject, new Error(`device printed an invalid port: ${JSON.stringify(line)}`));
        } else {
          finish(reject, new Error(`first stdout line of the device is not the ready line: ${JSON.stringify(line)}${deviceLog()}`));
        }
      }
    });
    child.once('exit', (code, signal) =>
      finish(reject, new Error(`device exited before it was ready (code ${code}, signal ${signal})${deviceLog()}`)),
    );
    child.once('error', (err) => finish(reject, new Error(`cannot start the device ${DEVICE_BIN}: ${err.message}`)));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// device process + client connection

before(async () => {
  if (!existsSync(DEVICE_BIN)) {
    throw new Error(
      `device binary not found: ${DEVICE_BIN}\n` +
        `  build it first (cargo build --release -p port-linux) or point LWM2M_DEVICE_BIN at it`,
    );
  }
  device = spawn(DEVICE_BIN, ['--ws', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  deviceExit = new Promise((resolve) => device.once('exit', (code, signal) => resolve({ code, signal })));
  for (const stream of [device.stdout, device.stderr]) {
    stream.on('data', (chunk) => {
      deviceOutput += chunk.toString('utf8');
      if (deviceOutput.length > 64_000) deviceOutput = deviceOutput.slice(-32_000);
      if (VERBOSE) process.stderr.write(`[device] ${chunk}`);
    });
  }
  const port = await waitForReadyLine(device);

  protocol = new WebSocketProtocol({ url: `ws://127.0.0.1:${port}` });
  protocol.options.send.timeout = SEND_TIMEOUT_MS;
  // Observe (not alter) the APDUs for the failure messages.
  const write = protocol.write.bind(protocol);
  protocol.write = (data) => {
    record('TX', data);
    return write(data);
  };
  const notify = protocol.notifyNewMessage.bind(protocol);
  protocol.notifyNewMessage = (message) => {
    record('RX', message);
    return notify(message);
  };

  tap = Tap.fromProtocol(protocol);
  try {
    await tap.connect();
  } catch (err) {
    throw new Error(`client could not connect to ws://127.0.0.1:${port}: ${err.message}${deviceLog()}`);
  }
  // The transport silently converts text frames to bytes; the device must answer with binary frames only.
  protocol.ws.addEventListener('message', (event) => {
    if (typeof event.data === 'string') counts.textFrames++;
  });
});

after(async () => {
  if (tap) {
    try {
      await tap.disconnect();
    } catch {
      // the device may already be gone; the exit check below reports it
    }
  }
  if (!device) return;
  if (device.exitCode === null && device.signalCode === null) device.kill('SIGINT');
  let timer;
  const result = await Promise.race([
    deviceExit,
    new Promise((resolve) => (timer = setTimeout(() => resolve(null), EXIT_TIMEOUT_MS))),
  ]);
  clearTimeout(timer);
  if (result === null) {
    device.kill('SIGKILL');
    await deviceExit;
    assert.fail(`device did not exit within ${EXIT_TIMEOUT_MS} ms of SIGINT (killed with SIGKILL)${deviceLog()}`);
  }
  assert.deepEqual(
    result,
    { code: 0, signal: null },
    `device must exit with code 0 on SIGINT, got code ${result.code} signal ${result.signal}${deviceLog()}`,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// the checks, in order, on one connection

test('device info /3//0../3//3 are non-empty printable ASCII; serial number is stable', async () => {
  const dev = tap.service.device;
  const manufacturer = expectOkBody('GET /3//0 manufacturer', await call('GET /3//0', () => dev.getManufacturer()));
  assertPrintableAscii('GET /3//0 manufacturer', manufacturer);
  const flavor = expectOkBody('GET /3//1 firmware flavor', await call('GET /3//1', () => dev.getFirmwareFlavor()));
  assertPrintableAscii('GET /3//1 firmware flavor', flavor);
  const serial = expectOkBody('GET /3//2 serial number', await call('GET /3//2', () => dev.getSerialNumber()));
  assertPrintableAscii('GET /3//2 serial number', serial);
  serialNumber = serial;
  const version = expectOkBody('GET /3//3 firmware version', await call('GET /3//3', () => dev.getFirmwareVersion()));
  assertPrintableAscii('GET /3//3 firmware version', version);
  const serialAgain = expectOkBody('GET /3//2 (second read)', await call('GET /3//2', () => dev.getSerialNumber()));
  assert.equal(serialAgain, serial, `two reads of /3//2 differ: ${JSON.stringify(serial)} then ${JSON.stringify(serialAgain)}${wireLog()}`);
});

test('/1024//88 max frame sizes: request and response >= 250', async () => {
  const r = await call('GET /1024//88', () => tap.service.interface.getCurrentHostProtocolMaxFrameSize());
  const sizes = expectOkBody('GET /1024//88', r);
  assert.equal(r.rawBody().length, 4, `GET /1024//88: body must be 4 bytes (request u16, response u16), got 0x${hex(r.rawBody())}${wireLog()}`);
  assert.ok(sizes.request >= 250, `GET /1024//88: request size ${sizes.request} < 250 (body 0x${hex(r.rawBody())})${wireLog()}`);
  assert.ok(sizes.response >= 250, `GET /1024//88: response size ${sizes.response} < 250 (body 0x${hex(r.rawBody())})${wireLog()}`);
});

test('anonymous: /1024//7 current group id == 0', async () => {
  const gid = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(gid, ANONYMOUS_ID, `GET /1024//7 while anonymous: expected 0x0000, got ${hexStatus(gid)}${wireLog()}`);
});

test('anonymous reboot POST /3//4 is refused with 0x81 UNAUTHORIZED', async () => {
  const r = await call('POST /3//4', () => tap.service.device.reboot());
  assert.equal(r.isSuccessful(), false, `POST /3//4 while anonymous must fail, device answered ${statusName(r.status)}${wireLog()}`);
  expectStatus('POST /3//4 while anonymous', r, ResultCode.UNAUTHORIZED);
  // The client's error object for the refused call carries the same status.
  assert.throws(
    () => r.successful(),
    (err) => err.code === 'TapErrorTapResponseStatusError' && err.response.status === ResultCode.UNAUTHORIZED,
  );
});

test('unknown object /9999//0 answers 0x84 NOT_FOUND', async () => {
  // Generic request through the client's own ServiceCallRunner (path parsed and encoded by the client).
  const r = await call('GET /9999//0', () => tap.lwm2m.get('/9999//0'));
  expectStatus('GET /9999//0 (object absent from the device)', r, ResultCode.NOT_FOUND);
});

test('login with a wrong password is rejected with 0x81 or 0x86', async () => {
  let error;
  try {
    await tap.auth.login({ username: 'admin', password: 'wrong' });
  } catch (err) {
    error = err;
  }
  assert.ok(error, `tap.auth.login(admin/wrong) resolved: the device accepted a wrong password${wireLog()}`);
  const refused = requestOfResponse(responseOfError(error));
  const status = statusOfError(error);
  assert.equal(
    refused,
    'POST /1024/65535/0',
    `login admin/wrong failed on ${refused} (status ${hexStatus(status)}) instead of on the login request POST /1024//0 ` +
      `(${error.code}: ${error.message})${wireLog()}`,
  );
  assert.ok(
    status === ResultCode.UNAUTHORIZED || status === ResultCode.NOT_ACCEPTABLE,
    `login admin/wrong: expected status 0x81 or 0x86, got ${hexStatus(status)} ` +
      `(${error.code}: ${error.message}${error.cause ? ' / cause: ' + error.cause.message : ''})${wireLog()}`,
  );
  assert.equal(error.code, 'TapAuthErrorInvalidCredentials', `client error code: ${error.code}: ${error.message}`);
});

test('login admin/admin, then /1024//7 == 0xFFFF', async () => {
  try {
    await tap.auth.login({ username: 'admin', password: 'admin' });
  } catch (err) {
    // Note: the client reports a failure of its post-login session refresh (GET /1024//7, GET /1025/{gid}/4)
    // as a login failure too; the cause names the request that failed.
    assert.fail(
      `tap.auth.login(admin/admin) failed: ${err.code}: ${err.message}` +
        `${err.cause ? '\n  cause: ' + err.cause.message : ''}` +
        `\n  failing request: ${requestOfResponse(responseOfError(err))}, status ${hexStatus(statusOfError(err))}${wireLog()}`,
    );
  }
  assert.equal(tap.auth.sessionStateSnapshot.groupId, ADMIN_ID, `session state after login: ${JSON.stringify(tap.auth.sessionStateSnapshot)}`);
  const gid = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(gid, ADMIN_ID, `GET /1024//7 after admin login: expected 0xffff, got ${hexStatus(gid)}${wireLog()}`);
});

test('keep-alive GET /1024//4 answers a u32', async () => {
  const r = await call('GET /1024//4', () => tap.service.interface.keepAlive());
  const value = expectOkBody('GET /1024//4 keep-alive', r);
  assert.equal(r.rawBody().length, 4, `GET /1024//4: body must be a u32 (4 bytes), got 0x${hex(r.rawBody())}${wireLog()}`);
  assert.equal(typeof value, 'number');
});

test('multi-request /1024//89: GET /3//2 + GET /1024//7', async () => {
  const iface = tap.service.interface;
  if (serialNumber === undefined) {
    // the device-info test failed before reading the serial number: read it here
    serialNumber = expectOkBody('GET /3//2 serial number', await call('GET /3//2', () => tap.service.device.getSerialNumber()));
  }
  const responses = await call('GET /1024//89', () =>
    iface.executeMultipleCalls([tap.service.device.getSerialNumberCall(), iface.getCurrentGroupIdCall()]),
  );
  assert.equal(responses.length, 2, `GET /1024//89: expected 2 responses, got ${responses.length}${wireLog()}`);
  const [serial, group] = responses;
  expectStatus('multi-request item 1 (GET /3//2)', serial, ResultCode.OK);
  expectStatus('multi-request item 2 (GET /1024//7)', group, ResultCode.OK);
  assert.equal(
    hex(serial.rawBody()),
    hex(Buffer.from(serialNumber, 'ascii')),
    `multi-request item 1: data must be the serial number bytes${wireLog()}`,
  );
  assert.equal(hex(group.rawBody()), 'ffff', `multi-request item 2: data must be 0xffff (admin)${wireLog()}`);
  assert.equal(group.body(), ADMIN_ID);
});

test('logout, then /1024//7 == 0', async () => {
  try {
    await tap.auth.logout();
  } catch (err) {
    assert.fail(`tap.auth.logout() failed: ${err.code}: ${err.message} (status ${hexStatus(statusOfError(err))})${wireLog()}`);
  }
  const gid = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(gid, ANONYMOUS_ID, `GET /1024//7 after logout: expected 0x0000, got ${hexStatus(gid)}${wireLog()}`);
});

test('every request got exactly one binary WebSocket response', async () => {
  await new Promise((resolve) => setTimeout(resolve, 200)); // let any stray extra message arrive
  assert.equal(counts.textFrames, 0, `the device sent ${counts.textFrames} text frame(s); responses must be binary messages${wireLog()}`);
  assert.equal(counts.rx, counts.tx, `${counts.tx} requests sent but ${counts.rx} messages received${wireLog()}`);
});
