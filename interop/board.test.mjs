// Interop test: the real npm client `@iotize/tap@2.7.0` against a board firmware booted in QEMU and
// reached through `port-linux --bridge-serial` (`cargo xtask qemu BOARD --ws 127.0.0.1:0`).
//
// Skipped unless LWM2M_BOARD names the board (`mps2-an386`, `microbit`) and LWM2M_XTASK the xtask
// binary: `cargo xtask boards` sets both. Every request is made by the client's own services.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ADMIN_ID,
  ANONYMOUS_ID,
  assertPrintableAscii,
  call,
  connectTap,
  expectOkBody,
  hex,
  login,
  logout,
  startDevice,
  wireLog,
} from './harness.mjs';

const BOARD = process.env.LWM2M_BOARD;
const XTASK = process.env.LWM2M_XTASK;
const skip = !BOARD || !XTASK ? 'set LWM2M_BOARD and LWM2M_XTASK (cargo xtask boards does)' : false;

let device;
let conn;
let tap;

before(async () => {
  if (skip) return;
  // `xtask qemu BOARD --ws 127.0.0.1:0`: the bridge's ready line is its first stdout line.
  device = await startDevice([], { bin: XTASK, prefix: ['qemu', BOARD] });
  conn = await connectTap(device.port, { label: BOARD });
  tap = conn.tap;
});

after(async () => {
  if (conn) await conn.close();
  if (device) await device.stop();
});

test(`${BOARD}: device information`, { skip }, async () => {
  const dev = tap.service.device;
  const flavor = expectOkBody('GET /3//1', await call('GET /3//1', () => dev.getFirmwareFlavor()));
  assert.equal(flavor, BOARD, `the board's /3//1 is its QEMU machine${wireLog()}`);
  const serial = expectOkBody('GET /3//2', await call('GET /3//2', () => dev.getSerialNumber()));
  assertPrintableAscii('GET /3//2 serial number', serial);
  const manufacturer = expectOkBody('GET /3//0', await call('GET /3//0', () => dev.getManufacturer()));
  assertPrintableAscii('GET /3//0 manufacturer', manufacturer);
});

test(`${BOARD}: login admin, /1024//7, a variable created, written and read, logout`, { skip }, async () => {
  const iface = tap.service.interface;
  assert.equal(expectOkBody('GET /1024//7', await call('GET /1024//7', () => iface.getCurrentGroupId())), ANONYMOUS_ID);
  await login(tap, 'admin', 'admin');
  assert.equal(expectOkBody('GET /1024//7', await call('GET /1024//7', () => iface.getCurrentGroupId())), ADMIN_ID);

  const vars = tap.service.variable;
  expectOkBody('POST /1029/7/65535', await call('create variable 7', () => vars.create(7)));
  // A UINT32 in the board's simulated target memory.
  expectOkBody('PUT /1029/7/1', await call('type of variable 7', () => vars.putType(7, { domain: 0, data: 0x23 })));
  expectOkBody('PUT /1029/7/0', await call('address of variable 7', () => vars.putVariableAddress(7, 0x20000040)));
  const value = Uint8Array.from([0xde, 0xad, 0xbe, 0xef]);
  expectOkBody('PUT /1029/7/4', await call('write variable 7', () => vars.putValue(7, value)));
  const read = expectOkBody('GET /1029/7/4', await call('read variable 7', () => vars.getValue(7)));
  assert.equal(hex(read), 'deadbeef', `value of variable 7 read back${wireLog()}`);

  await logout(tap);
  assert.equal(expectOkBody('GET /1024//7', await call('GET /1024//7', () => iface.getCurrentGroupId())), ANONYMOUS_ID);
});
