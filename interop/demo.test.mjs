// Interop test "demo": `port-linux` started without `--no-demo` comes up with its demo configuration, which the
// real npm client `@iotize/tap@2.7.0` can read without logging in: bundle 1 "demo" (anonymous may read it, admin
// read and write it) with
//   1 "counter"  UINT32  on the target  tenths of a second since the device started
//   2 "wave"     FLOAT32 on the target  a sine of period 10 s around the set-point
//   3 "setpoint" INT16   on the target  initially 20
//   4 "limit"    UINT16  in the device  static, initially 100
//   5 "mode"     UINT8   in the device  volatile, initially 1
// As anonymous: the bundle and every variable read, the counter and the wave move between two reads 1.1 s apart,
// the set-point cannot be written (0x81); as admin the set-point is written and reads back.
//
// Every request is made by the client's own services; `variable.getValue` gives the raw bytes, decoded here
// big-endian as the variable's type says.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  ANONYMOUS_ID,
  ResultCode,
  call,
  connectTap,
  expectOkBody,
  expectStatus,
  hex,
  login,
  require,
  sleep,
  startDevice,
  wireLog,
} from './harness.mjs';

const { TlvBundleConverter } = require('@iotize/tap/client/impl');
const { VariableType } = require('@iotize/tap/service/impl/variable');
const { Data, Domain } = VariableType;

const BUNDLE = { id: 1, name: 'demo' };
const VARIABLES = [
  { id: 1, name: 'counter', domain: Domain.TARGET, data: Data.UINT32, size: 4, decode: (b) => b.readUInt32BE(0) },
  { id: 2, name: 'wave', domain: Domain.TARGET, data: Data.FLOAT32, size: 4, decode: (b) => b.readFloatBE(0) },
  { id: 3, name: 'setpoint', domain: Domain.TARGET, data: Data.INT16, size: 2, decode: (b) => b.readInt16BE(0), initial: 20 },
  { id: 4, name: 'limit', domain: Domain.IN_TAP_STATIC, data: Data.UINT16, size: 2, decode: (b) => b.readUInt16BE(0), initial: 100 },
  { id: 5, name: 'mode', domain: Domain.IN_TAP_VOLATIL, data: Data.UINT8, size: 1, decode: (b) => b.readUInt8(0), initial: 1 },
];
const byName = Object.fromEntries(VARIABLES.map((v) => [v.name, v]));
const int16 = (x) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(x);
  return b;
};

/** Tenths the counter may be off what the test's clock says: the rounding of both clocks. */
const SLACK = 3;

let device;
let conn;
let tap;
let startedAt; // just before the device was spawned: the counter cannot count from earlier

before(async () => {
  startedAt = Date.now();
  device = await startDevice([], { demo: true });
  conn = await connectTap(device.port, { label: 'D' });
  tap = conn.tap;
});

after(async () => {
  if (conn) await conn.close();
  if (device) await device.stop();
});

/** The value of a demo variable as anonymous (or whoever is logged in), decoded; its raw bytes checked for size. */
async function read(v) {
  const what = `GET /1029/${v.id}/4 (${v.name})`;
  const raw = Buffer.from(expectOkBody(what, await call(what, () => tap.service.variable.getValue(v.id))));
  assert.equal(raw.length, v.size, `${what}: ${v.size} bytes expected, got 0x${hex(raw)}${wireLog()}`);
  return v.decode(raw);
}

test('anonymous (no login) reads bundle 1 "demo" and its five variables', async () => {
  const gid = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(gid, ANONYMOUS_ID, `not logged in: GET /1024//7${wireLog()}`);
  const name = expectOkBody('GET /1028/1/4', await call('GET /1028/1/4', () => tap.service.bundle.getName(BUNDLE.id)));
  assert.equal(name, BUNDLE.name, `name of bundle 1${wireLog()}`);
  const values = expectOkBody('GET /1028/1/1', await call('GET /1028/1/1', () => tap.service.bundle.getValues(BUNDLE.id)));
  let record;
  try {
    record = new TlvBundleConverter().decode(Uint8Array.from(values));
  } catch (err) {
    assert.fail(`GET /1028/1/1: the client's TLV decoder refused 0x${hex(values)}: ${err.message}${wireLog()}`);
  }
  const ids = Object.keys(record).map(Number).sort((a, b) => a - b);
  assert.deepEqual(ids, VARIABLES.map((v) => v.id), `variable ids of the bundle's TLV 0x${hex(values)}${wireLog()}`);
  for (const v of VARIABLES) {
    const what = `GET /1029/${v.id}/1 (type of ${v.name})`;
    const type = expectOkBody(what, await call(what, () => tap.service.variable.getType(v.id)));
    assert.deepEqual(
      { domain: Domain[type.domain], data: Data[type.data] },
      { domain: Domain[v.domain], data: Data[v.data] },
      `${what}${wireLog()}`,
    );
    const inBundle = Buffer.from(record[v.id]);
    assert.equal(inBundle.length, v.size, `size of ${v.name} in the bundle's TLV 0x${hex(values)}`);
    const value = await read(v);
    if ('initial' in v) {
      assert.equal(v.decode(inBundle), v.initial, `initial value of ${v.name} in the bundle's TLV 0x${hex(values)}`);
      assert.equal(value, v.initial, `initial value of ${v.name}${wireLog()}`);
    }
  }
});

test('the counter counts tenths of a second and the wave moves: two reads 1.1 s apart', async () => {
  const { counter, wave } = byName;
  const t0 = Date.now();
  const c1 = await read(counter);
  const w1 = await read(wave);
  const t1 = Date.now();
  await sleep(1100);
  const t2 = Date.now();
  const c2 = await read(counter);
  const w2 = await read(wave);
  const t3 = Date.now();
  assert.ok(c1 <= Math.ceil((t1 - startedAt) / 100) + SLACK, `counter ${c1} at ${t1 - startedAt} ms after the device was started: not tenths of a second since then`);
  // between the two reads at least t2 - t1 and at most t3 - t0 went by
  const low = Math.floor((t2 - t1) / 100) - SLACK;
  const high = Math.ceil((t3 - t0) / 100) + SLACK;
  assert.ok(c2 - c1 >= low && c2 - c1 <= high, `counter ${c1} then ${c2}: +${c2 - c1} tenths, expected ${low}..${high} for ${t2 - t1}..${t3 - t0} ms`);
  assert.ok(Number.isFinite(w1) && Number.isFinite(w2), `wave values ${w1}, ${w2}: not finite`);
  assert.notEqual(w2, w1, `wave ${w1} then ${w2}: a sine of period 10 s moves in 1.1 s`);
  // 5 around the set-point, which nobody wrote yet
  const { setpoint } = byName;
  for (const w of [w1, w2]) assert.ok(Math.abs(w - setpoint.initial) <= 5 + 1e-3, `wave ${w}: not within 5 of the set-point ${setpoint.initial}`);
});

test('anonymous cannot write the set-point (0x81); admin writes it and reads it back', async () => {
  const { setpoint } = byName;
  const before = await read(setpoint);
  expectStatus(
    'anonymous PUT /1029/3/4',
    await call('PUT /1029/3/4', () => tap.service.variable.putValue(setpoint.id, int16(before + 5))),
    ResultCode.UNAUTHORIZED,
  );
  assert.equal(await read(setpoint), before, `set-point after the refused anonymous write${wireLog()}`);
  await login(tap, 'admin', 'admin');
  const target = before + 5;
  expectOkBody('admin PUT /1029/3/4', await call('PUT /1029/3/4', () => tap.service.variable.putValue(setpoint.id, int16(target))));
  assert.equal(await read(setpoint), target, `set-point read back after the admin's write${wireLog()}`);
  // the wave follows the set-point
  const wave = await read(byName.wave);
  assert.ok(Math.abs(wave - target) <= 5 + 1e-3, `wave ${wave} after the set-point became ${target}`);
});

test('a factory reset gives the empty factory configuration, which the configurator starts from', async () => {
  // still the admin of the test before
  expectStatus('POST /3//5', await call('POST /3//5', () => tap.service.device.factoryReset()), ResultCode.OK);
  await login(tap, 'admin', 'admin');
  expectStatus('GET /1028/1/4', await call('GET /1028/1/4', () => tap.service.bundle.getName(BUNDLE.id)), ResultCode.NOT_FOUND);
  for (const v of VARIABLES) {
    expectStatus(`GET /1029/${v.id}/1`, await call(`GET /1029/${v.id}/1`, () => tap.service.variable.getType(v.id)), ResultCode.NOT_FOUND);
  }
});
