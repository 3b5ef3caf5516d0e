// Interop test "persistence": configuration values written by the real npm client `@iotize/tap@2.7.0` through its
// own services, in several groups (interface, Wi-Fi, MQTT, time, disabled services, target), saved by the client's
// `interface.putConfigVersion` (PUT /1024//10 with a real version: the device saves the image; 255.255.65535
// would only mark it "being configured"), survive a restart of `port-linux` on the same `--state` directory; two
// values changed after the save, and not saved, are gone after it.
//
// The device starts empty (`--no-demo`, the harness default). Every request is made by the client's services;
// values are compared as the client decodes them.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, connectTap, expectOkBody, ResultCode, login, require, startDevice, statusName, wireLog } from './harness.mjs';

const { TargetProtocol } = require('@iotize/tap');
const { ServiceCode } = require('@iotize/tap/service/impl/interface');
const { WifiProtocol } = require('@iotize/tap/service/impl/wifi');

const SAVED_VERSION = '1.4.2';

/**
 * One value per line: the client's write and read, the value saved, and (for two of them) the value written after
 * the save and lost with the restart. `read` is what the client decodes from what `value` wrote, when the
 * resource reads back in another shape than it is written.
 */
const VALUES = [
  {
    name: 'interface.putAppName',
    put: (s, v) => s.interface.putAppName(v),
    get: (s) => s.interface.getAppName(),
    value: 'Persisted',
    unsaved: 'NotSaved',
  },
  { name: 'wifi.putSSID', put: (s, v) => s.wifi.putSSID(v), get: (s) => s.wifi.getSSID(), value: 'persist-ssid' },
  {
    // The client writes a mask of protocols and decodes one value: the device answers the highest bit written.
    name: 'wifi.putProtocol',
    put: (s, v) => s.wifi.putProtocol(v),
    get: (s) => s.wifi.getProtocol(),
    value: [WifiProtocol.B, WifiProtocol.N],
    read: WifiProtocol.N,
  },
  {
    name: 'mqtt.putBrokerHostname',
    put: (s, v) => s.mqtt.putBrokerHostname(v),
    get: (s) => s.mqtt.getBrokerHostname(),
    value: 'broker.example.org',
  },
  {
    name: 'time.putTimeZone',
    put: (s, v) => s.time.putTimeZone(v),
    get: (s) => s.time.getTimeZone(),
    value: 'Europe/Paris',
    unsaved: 'America/New_York',
  },
  { name: 'time.putNtpServer', put: (s, v) => s.time.putNtpServer(v), get: (s) => s.time.getNtpServer(), value: 'pool.ntp.org' },
  {
    // A u8 mask of ServiceCode bits, decoded as the list of codes set.
    name: 'interface.postDisabledServices',
    put: (s, v) => s.interface.postDisabledServices(v),
    get: (s) => s.interface.getDisabledServices(),
    value: [ServiceCode.DATALOG, ServiceCode.JVM],
  },
  {
    name: 'target.putSerialModbusConfiguration',
    put: (s, v) => s.target.putSerialModbusConfiguration(v),
    get: (s) => s.target.getSerialModbusConfiguration(),
    value: {
      modbus: { slave: 7, offsetFirstRegister: true },
      // RS232, one stop bit, even parity, 8 data bits, no delimiter, no flow control; timeout 50
      serial: { baudRate: 19200, physicalPort: 1, stopBits: 0, bitParity: 2, dataBits: 1, handshakeDelimiter: 0, hardwareFlowControl: 0, timeout: 50 },
    },
  },
  {
    name: 'target.putProtocol',
    put: (s, v) => s.target.putProtocol(v),
    get: (s) => s.target.getProtocol(),
    value: TargetProtocol.MODBUS,
  },
  {
    // Written on one byte by the client, read on two. Not short: the owner's session must not expire meanwhile.
    name: 'interface.putHostInactivityPeriod',
    put: (s, v) => s.interface.putHostInactivityPeriod(v),
    get: (s) => s.interface.getHostInactivityPeriod(),
    value: 240,
  },
];
const readOf = (v) => ('read' in v ? v.read : v.value);
const show = (x) => JSON.stringify(x);

let stateDir;
let device;
let conn;

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-interop-persistence-'));
  device = await startDevice(['--state', stateDir]);
  conn = await connectTap(device.port, { label: 'P1' });
  await login(conn.tap, 'admin', 'admin');
});

after(async () => {
  if (conn) await conn.close();
  if (device) await device.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

/** Write and read back each line; the failures of all lines, not only the first (one message lists them). */
async function writeAll(tap, lines, pick, when) {
  const failures = [];
  for (const v of lines) {
    const value = pick(v);
    const put = await call(`${v.name}(${show(value)})`, () => v.put(tap.service, value));
    if (put.status !== ResultCode.OK) {
      failures.push(`${v.name}(${show(value)}): ${statusName(put.status)}`);
      continue;
    }
    const problem = await readBack(tap, v, value === v.value ? readOf(v) : value);
    if (problem) failures.push(`${when}: ${problem}`);
  }
  return failures;
}

/** Read a line with the client's get service: undefined if it decodes to `expected`, else what went wrong. */
async function readBack(tap, v, expected) {
  const what = v.name.replace(/\.(put|post)/, '.get');
  const r = await call(what, () => v.get(tap.service));
  if (r.status !== ResultCode.OK) return `${what}: ${statusName(r.status)}`;
  let got;
  try {
    got = r.body();
  } catch (err) {
    return `${what}: the client could not decode 0x${Buffer.from(r.rawBody()).toString('hex')}: ${err.message}`;
  }
  try {
    assert.deepEqual(got, expected);
  } catch {
    return `${what}: ${show(got)}, expected ${show(expected)}`;
  }
  return undefined;
}

test('as admin, a value of each group written by the client reads back as written', async () => {
  const failures = await writeAll(conn.tap, VALUES, (v) => v.value, 'before the save');
  assert.deepEqual(failures, [], `writes that did not take:\n  ${failures.join('\n  ')}${wireLog()}`);
});

test(`saved with interface.putConfigVersion('${SAVED_VERSION}') (PUT /1024//10)`, async () => {
  const { tap } = conn;
  expectOkBody('PUT /1024//10', await call('PUT /1024//10', () => tap.service.interface.putConfigVersion(SAVED_VERSION)));
  const version = expectOkBody('GET /1024//10', await call('GET /1024//10', () => tap.service.interface.getConfigVersion()));
  assert.equal(version, SAVED_VERSION, `GET /1024//10 after the save${wireLog()}`);
});

test('two values changed again, not saved', async () => {
  const changed = VALUES.filter((v) => 'unsaved' in v);
  assert.equal(changed.length, 2);
  const failures = await writeAll(conn.tap, changed, (v) => v.unsaved, 'after the save');
  assert.deepEqual(failures, [], `writes that did not take:\n  ${failures.join('\n  ')}${wireLog()}`);
});

test('restart (SIGINT, same --state): the saved values read back, the unsaved changes are gone', async () => {
  await conn.close();
  conn = undefined;
  await device.stop();
  device = undefined;
  const files = readdirSync(stateDir).filter((f) => statSync(path.join(stateDir, f)).size > 0);
  assert.ok(files.length > 0, `the device saved nothing in its --state directory ${stateDir}`);
  device = await startDevice(['--state', stateDir]);
  conn = await connectTap(device.port, { label: 'P2' });
  await login(conn.tap, 'admin', 'admin');
  const { tap } = conn;

  const version = expectOkBody('GET /1024//10', await call('GET /1024//10', () => tap.service.interface.getConfigVersion()));
  assert.equal(version, SAVED_VERSION, `GET /1024//10 after the restart${wireLog()}`);
  const failures = [];
  for (const v of VALUES) {
    const problem = await readBack(tap, v, readOf(v));
    if (problem) failures.push(`${problem}${'unsaved' in v ? ` (${show(v.unsaved)} was written after the save, not saved)` : ''}`);
  }
  assert.deepEqual(failures, [], `after the restart, values other than the saved ones:\n  ${failures.join('\n  ')}${wireLog()}`);
});
