// Interop test: the real npm client `@iotize/tap@2.7.0` over `@iotize/device-com-websocket.js@2.0.0`
// against the `port-linux` device binary, over a real loopback WebSocket.
//
// Every request below is produced by the client's own service / auth API (or, for the unknown-object check,
// by its generic ServiceCallRunner `tap.lwm2m.get(path)`), never by hand-made bytes. The transport is only
// observed (TX/RX hex is recorded for the failure messages), never altered.
//
// Device start/stop, connection and assertion helpers live in harness.mjs (environment variables there).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_ID,
  ANONYMOUS_ID,
  ResultCode,
  assertPrintableAscii,
  call,
  connectTap,
  expectOkBody,
  expectStatus,
  hex,
  hexStatus,
  login,
  logout,
  requestOfResponse,
  responseOfError,
  startDevice,
  statusName,
  statusOfError,
  wireLog,
} from './harness.mjs';

let device; // from startDevice()
let conn; // from connectTap()
let tap;
let serialNumber; // from the device-info test, reused by the multi-request test

// ---------------------------------------------------------------------------------------------------------------
// device process + client connection

before(async () => {
  device = await startDevice();
  conn = await connectTap(device.port);
  tap = conn.tap;
});

after(async () => {
  if (conn) await conn.close();
  if (device) await device.stop();
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
  // (the client also sends GET /1024//6 before the first login, then GET /1024//7 and GET /1025/65535/4 after it)
  await login(tap, 'admin', 'admin');
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
  await logout(tap);
  const gid = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(gid, ANONYMOUS_ID, `GET /1024//7 after logout: expected 0x0000, got ${hexStatus(gid)}${wireLog()}`);
});

test('every request got exactly one binary WebSocket response', async () => {
  await new Promise((resolve) => setTimeout(resolve, 200)); // let any stray extra message arrive
  const { counts } = conn;
  assert.equal(counts.textFrames, 0, `the device sent ${counts.textFrames} text frame(s); responses must be binary messages${wireLog()}`);
  assert.equal(counts.rx, counts.tx, `${counts.tx} requests sent but ${counts.rx} messages received${wireLog()}`);
});
