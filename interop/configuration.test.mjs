// Interop test "One interlocutor, rights and configuration": the real npm client `@iotize/tap@2.7.0`
// configures the `port-linux` device with its own configurator (`tap.configurator.setup(...)`, from
// `@iotize/tap/ext/configurator`), reads the configuration back through its services, restarts the device on the
// same `--state` directory, checks the access rights of every profile, and checks that only one host channel owns
// the session at a time (spec README decisions 3, 4, 11; objects.md §6.1, §6.2, §6.5, §6.8).
//
// Every request is produced by the client (configurator, services, auth); nothing is hand-made. The tests run in
// order on one device process (restarted once) and share its state; device/connection/assertion helpers are in
// harness.mjs (environment variables there).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ADMIN_ID,
  ANONYMOUS_ID,
  ResultCode,
  VERBOSE,
  call,
  connectTap,
  describeRequestFrame,
  expectOkBody,
  expectStatus,
  hex,
  hexStatus,
  login,
  logout,
  require,
  sleep,
  startDevice,
  statusName,
  statusOfError,
  wireLog,
} from './harness.mjs';

require('@iotize/tap/ext/configurator'); // registers tap.configurator
const { TlvBundleConverter } = require('@iotize/tap/client/impl');

// ---------------------------------------------------------------------------------------------------------------
// the configuration applied by the client's configurator, and what the device must report afterwards

const SUPERVISOR_ID = 0xfffe;
const PASSWORDS = { admin: 'admin', user1: 'pwd1', user2: 'pwd2', bob: 'pwd3' };

const CONFIG_VERSION = '1.2.3';
const APP_NAME = 'InteropDemo';
const TARGET_RAM = { base: 0x20000000, size: 0x10000 };

/** Input of tap.configurator.setup(): the schema of @iotize/tap/config/schema/v1 (TapConfiguratorConfig). */
const configuratorConfig = (meta) => ({
  meta,
  config: {
    version: CONFIG_VERSION,
    application: { name: APP_NAME },
    target: { type: 'MCU', protocol: { type: 'SWD' } },
    data: {
      profiles: [
        { username: 'admin', password: PASSWORDS.admin },
        // bob is a user of profile user1: the configurator gives him alias 1 (he shares user1's rights)
        { username: 'user1', id: 1, password: PASSWORDS.user1, lifeTime: 300, users: [{ username: 'bob', id: 3, password: PASSWORDS.bob }] },
        { username: 'user2', id: 2, password: PASSWORDS.user2 },
      ],
      bundles: [
        {
          id: 1,
          name: 'sensors',
          dataLog: { period: 10 },
          features: ['MODBUS_DIRECT_ACCESS'],
          acls: { anonymous: { read: true, write: false }, user1: { read: true, write: true }, admin: { read: true, write: true } },
          variables: [
            { id: 1, domain: 'TARGET', dataType: 'FLOAT32', address: 0x20000010, meta: { name: 'temp', unit: 'C' } },
            { id: 2, domain: 'IN_TAP_VOLATIL', dataType: 'UINT16', length: 2, value: [1, 2], meta: { name: 'count', unit: '' } },
          ],
        },
        {
          id: 2,
          name: 'private',
          acls: { user2: { read: true, write: true } },
          variables: [
            { id: 3, domain: 'TARGET', dataType: 'UINT32', address: 0x20000100, meta: { name: 'secret', unit: 'ms' } },
            { id: 4, domain: 'IN_TAP_STATIC', dataType: 'UINT32', value: 0x12345678 },
          ],
        },
      ],
    },
  },
});

const PROFILES = [
  { id: 1, name: 'user1', lifetime: 300, alias: 1 },
  { id: 2, name: 'user2', alias: 2 },
  { id: 3, name: 'bob', alias: 1 },
];
const BUNDLES = [
  { id: 1, name: 'sensors', dataLogPeriod: 10 },
  { id: 2, name: 'private' },
];
// type byte = [domain:2][data:6] (objects.md §6.2); domain TARGET 0, IN_TAP_STATIC 2, IN_TAP_VOLATIL 3
const VARIABLES = [
  { id: 1, bundle: 1, type: 0x13, domain: 0, data: 0x13, length: 1, size: 4, address: 0x20000010, meta: { name: 'temp', unit: 'C' } },
  { id: 2, bundle: 1, type: 0xe2, domain: 3, data: 0x22, length: 2, size: 4, initial: '00010002', meta: { name: 'count', unit: '' } },
  { id: 3, bundle: 2, type: 0x23, domain: 0, data: 0x23, length: 1, size: 4, address: 0x20000100, meta: { name: 'secret', unit: 'ms' } },
  { id: 4, bundle: 2, type: 0xa3, domain: 2, data: 0x23, length: 1, size: 4, initial: '12345678' },
];
const variable = (id) => VARIABLES.find((v) => v.id === id);
const RW = { read: true, write: true };
const R = { read: true, write: false };
const NONE = { read: false, write: false };
/** Effective rights per bundle: own (or alias) ACL entry + the anonymous entry; admin has everything. */
const RIGHTS = {
  anonymous: { 1: R, 2: NONE },
  user1: { 1: RW, 2: NONE },
  bob: { 1: RW, 2: NONE }, // alias user1
  user2: { 1: R, 2: RW }, // bundle 1 through the anonymous entry
  admin: { 1: RW, 2: RW },
};
const PROFILE_ID = { anonymous: ANONYMOUS_ID, user1: 1, user2: 2, bob: 3, admin: ADMIN_ID };
const readableIds = (who) => VARIABLES.filter((v) => RIGHTS[who][v.bundle].read).map((v) => v.id);

const f32 = (x) => {
  const b = Buffer.alloc(4);
  b.writeFloatBE(x);
  return b;
};
const u32 = (x) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(x);
  return b;
};

// ---------------------------------------------------------------------------------------------------------------
// shared state

let stateDir; // fresh temporary --state directory, removed at the end
let device; // current device process (restarted once)
let main; // current main connection { tap, protocol, counts, frames, close() }
const others = []; // other connections, closed at the end
let configuratorFrames = []; // request frames sent by the configurator (for the report in verbose mode)
let skippedKeys = []; // configuration keys the configurator dropped (ConfigKeyNotSupportedByFirmwareVersion)
/** Current expected value (hex) of every variable, updated by the writes below (undefined: not checked). */
const values = Object.fromEntries(VARIABLES.map((v) => [v.id, v.initial]));

before(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-interop-state-'));
  device = await startDevice(['--state', stateDir]);
  main = await connectTap(device.port, { label: 'A' });
});

after(async () => {
  for (const conn of [main, ...others]) if (conn) await conn.close();
  try {
    if (device) await device.stop();
  } finally {
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** Make `who` the current profile of the connection (logout, then login unless anonymous). */
async function become(tap, who) {
  await logout(tap);
  if (who !== 'anonymous') await login(tap, who, PASSWORDS[who]);
  const gid = expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId()));
  assert.equal(gid, PROFILE_ID[who], `after switching to ${who}: GET /1024//7 = ${hexStatus(gid)}${wireLog()}`);
}

/** Ids of the Resource-Value children of a TLV container, decoded by the client's TlvBundleConverter. */
function decodeTlv(what, raw) {
  try {
    return new TlvBundleConverter().decode(Uint8Array.from(raw));
  } catch (err) {
    assert.fail(`${what}: the client's TLV decoder refused 0x${hex(raw)}: ${err.message}${wireLog()}`);
  }
}
const idsOf = (record) => Object.keys(record).map(Number).sort((a, b) => a - b);

/** Run the client's configurator; returns { error, frames, skipped }. */
async function runConfigurator(conn, meta) {
  const { tap } = conn;
  const start = conn.frames.length;
  const skipped = [];
  let error;
  try {
    const runner = await tap.configurator.setup(configuratorConfig(meta));
    await new Promise((resolve, reject) =>
      runner.run().subscribe({
        next: (event) => {
          if (event.error) skipped.push(event.error.message);
        },
        error: reject,
        complete: resolve,
      }),
    );
  } catch (err) {
    error = err;
  }
  return { error, frames: conn.frames.slice(start), skipped };
}

/** Profiles, bundles, variables (without meta), in-device values and 1024/1027 settings, read as admin. */
async function checkConfiguration(tap, when) {
  const iface = tap.service.interface;
  const version = expectOkBody(`${when}: GET /1024//10`, await call('GET /1024//10', () => iface.getConfigVersion()));
  assert.equal(version, CONFIG_VERSION, `${when}: config version /1024//10 = ${version}${wireLog()}`);
  const appName = expectOkBody(`${when}: GET /1024//9`, await call('GET /1024//9', () => iface.getAppName()));
  assert.equal(appName, APP_NAME, `${when}: app name /1024//9${wireLog()}`);
  const protocol = expectOkBody(`${when}: GET /1027//1`, await call('GET /1027//1', () => tap.service.target.getProtocol()));
  assert.equal(protocol, 0, `${when}: target protocol /1027//1 = ${protocol}, expected SWD (0)${wireLog()}`);

  const group = tap.service.group;
  for (const p of PROFILES) {
    const name = expectOkBody(`${when}: GET /1025/${p.id}/0`, await call(`GET /1025/${p.id}/0`, () => group.getName(p.id)));
    assert.equal(name, p.name, `${when}: name of profile ${p.id}${wireLog()}`);
    const alias = expectOkBody(`${when}: GET /1025/${p.id}/5`, await call(`GET /1025/${p.id}/5`, () => group.getAlias(p.id)));
    assert.equal(alias, p.alias, `${when}: alias of profile ${p.id} (${p.name})${wireLog()}`);
    if (p.lifetime !== undefined) {
      const lifetime = expectOkBody(`${when}: GET /1025/${p.id}/4`, await call(`GET /1025/${p.id}/4`, () => group.getSessionLifetime(p.id)));
      assert.equal(lifetime, p.lifetime, `${when}: session lifetime of profile ${p.id} (${p.name})${wireLog()}`);
    }
  }
  // the configurator gives the supervisor (not in the configuration) a 30 s lifetime
  const supLifetime = expectOkBody(`${when}: GET /1025/65534/4`, await call('GET /1025/65534/4', () => group.getSessionLifetime(SUPERVISOR_ID)));
  assert.equal(supLifetime, 30, `${when}: supervisor session lifetime${wireLog()}`);

  const bundle = tap.service.bundle;
  for (const b of BUNDLES) {
    const name = expectOkBody(`${when}: GET /1028/${b.id}/4`, await call(`GET /1028/${b.id}/4`, () => bundle.getName(b.id)));
    assert.equal(name, b.name, `${when}: name of bundle ${b.id}${wireLog()}`);
    if (b.dataLogPeriod !== undefined) {
      const period = expectOkBody(`${when}: GET /1028/${b.id}/2`, await call(`GET /1028/${b.id}/2`, () => bundle.getDataLogPeriod(b.id)));
      assert.equal(period, b.dataLogPeriod, `${when}: data-log period of bundle ${b.id}${wireLog()}`);
    }
  }

  const vars = tap.service.variable;
  for (const v of VARIABLES) {
    const typeResponse = await call(`GET /1029/${v.id}/1`, () => vars.getType(v.id));
    const type = expectOkBody(`${when}: GET /1029/${v.id}/1 type`, typeResponse);
    assert.equal(hex(typeResponse.rawBody()), hex([v.type]), `${when}: type byte of variable ${v.id}${wireLog()}`);
    assert.deepEqual({ domain: type.domain, data: type.data }, { domain: v.domain, data: v.data }, `${when}: decoded type of variable ${v.id}${wireLog()}`);
    const length = expectOkBody(`${when}: GET /1029/${v.id}/2`, await call(`GET /1029/${v.id}/2`, () => vars.getNumberOfElements(v.id)));
    assert.equal(length, v.length, `${when}: number of elements of variable ${v.id}${wireLog()}`);
    const bundleId = expectOkBody(`${when}: GET /1029/${v.id}/6`, await call(`GET /1029/${v.id}/6`, () => vars.getBundleId(v.id)));
    assert.equal(bundleId, v.bundle, `${when}: bundle of variable ${v.id}${wireLog()}`);
    if (v.address !== undefined) {
      const address = expectOkBody(`${when}: GET /1029/${v.id}/0`, await call(`GET /1029/${v.id}/0`, () => vars.getVariableAddress(v.id)));
      assert.equal(address, v.address, `${when}: address of variable ${v.id}: 0x${address?.toString(16)}${wireLog()}`);
      assert.ok(address >= TARGET_RAM.base && address + v.size <= TARGET_RAM.base + TARGET_RAM.size);
    }
    const value = expectOkBody(`${when}: GET /1029/${v.id}/4`, await call(`GET /1029/${v.id}/4`, () => vars.getValue(v.id)));
    assert.equal(value.length, v.size, `${when}: value of variable ${v.id} is 0x${hex(value)}, expected ${v.size} bytes${wireLog()}`);
    if (v.initial !== undefined) {
      // in-device variables: the initial value written by the configurator (POST /1029/{id}/5), saved with the configuration
      assert.equal(hex(value), v.initial, `${when}: value of in-device variable ${v.id}${wireLog()}`);
    }
  }
}

/** The client's own view of the current profile's rights on every variable (GET /1029/{id}/3). */
async function checkCurrentAccess(tap, who, when) {
  for (const v of VARIABLES) {
    const rights = expectOkBody(
      `${when}: ${who}: GET /1029/${v.id}/3`,
      await call(`GET /1029/${v.id}/3`, () => tap.service.variable.getCurrentAccess(v.id)),
    );
    const expected = RIGHTS[who][v.bundle];
    assert.deepEqual(
      { read: !!rights.read, write: !!rights.write },
      expected,
      `${when}: ${who}'s rights on variable ${v.id} (bundle ${v.bundle}): got ${JSON.stringify(rights)}${wireLog()}`,
    );
  }
}

/** Meta (name:unit) of the variables, and the special feature of bundle 1: keys the configurator gates by firmware version. */
async function checkVersionGatedKeys(tap, when) {
  for (const v of VARIABLES.filter((x) => x.meta)) {
    const meta = expectOkBody(`${when}: GET /1029/${v.id}/8 meta`, await call(`GET /1029/${v.id}/8`, () => tap.service.variable.getMeta(v.id)));
    assert.deepEqual({ name: meta.name, unit: meta.unit }, v.meta, `${when}: meta of variable ${v.id}${wireLog()}`);
  }
  const feature = expectOkBody(
    `${when}: GET /1024//102 (MODBUS_DIRECT_ACCESS)`,
    await call('GET /1024//102', () => tap.service.interface.getSpecialFeatureProfile(102)),
  );
  assert.equal(feature, 1, `${when}: special feature 102 must belong to bundle 1, got ${feature}${wireLog()}`);
}

// ---------------------------------------------------------------------------------------------------------------
// 1-2. configure with the client's configurator, read back through the services

test('the configurator applies the configuration; the device answers every request with 0x00', async () => {
  const { tap } = main;
  await login(tap, 'admin', 'admin');
  // The default flow starts with a factory reset (POST /3//5); see the last test. The configurator reads the
  // option as `meta.skipFactoryReset` (the schema documents `meta.options.skipFactoryReset`, which it ignores).
  const { error, frames, skipped } = await runConfigurator(main, { skipFactoryReset: true });
  configuratorFrames = frames;
  skippedKeys = skipped;
  if (VERBOSE) {
    process.stderr.write(`[configurator] ${frames.length} requests:\n`);
    for (const f of frames) process.stderr.write(`  ${describeRequestFrame(f).padEnd(48)} ${hex(f)}\n`);
    for (const s of skipped) process.stderr.write(`  skipped: ${s}\n`);
  }
  if (error) {
    const last = frames.at(-1);
    assert.fail(
      `the configurator failed on ${last ? describeRequestFrame(last) : '?'} (frame ${last ? hex(last) : '?'}), ` +
        `status ${hexStatus(statusOfError(error))}: ${error.code}: ${error.message}${wireLog()}`,
    );
  }
  const described = frames.map(describeRequestFrame);
  assert.equal(described[0], 'GET /3//3', `the configurator first reads the firmware version: ${described[0]}`);
  assert.equal(described[1], 'PUT /1024//10 body ffffffff', `then marks the configuration in progress: ${described[1]}`);
  assert.equal(described.at(-2), 'PUT /1024//10 body 01020003', `then ends with the real version: ${described.at(-2)}`);
  assert.equal(described.at(-1), 'POST /1024//1', `and logs out: ${described.at(-1)}`);
  for (const acl of ['PUT /1028/1/0 body 410001', 'PUT /1028/1/0 body 410103', 'PUT /1028/1/0 body 61ff03', 'PUT /1028/2/0 body 410203']) {
    assert.ok(described.includes(acl), `the configurator did not send ${acl}: ${described.join(', ')}`);
  }
  assert.equal(main.counts.rx, main.counts.tx, `${main.counts.tx} requests sent but ${main.counts.rx} answers${wireLog()}`);
});

test('the configurator skips no configuration key for the firmware version the device reports (/3//3)', async () => {
  const version = expectOkBody('GET /3//3', await call('GET /3//3', () => main.tap.service.device.getFirmwareVersion()));
  const distinct = [...new Set(skippedKeys)].map((m) => `${skippedKeys.filter((x) => x === m).length} x ${m}`);
  assert.equal(
    skippedKeys.length,
    0,
    `with /3//3 = ${JSON.stringify(version)} the configurator dropped ${skippedKeys.length} request(s) without sending them:\n    ` +
      distinct.join('\n    '),
  );
});

test('after configuration (admin, client services): profiles, bundles, variables, in-device values, settings', async () => {
  const { tap } = main;
  await become(tap, 'admin');
  await checkConfiguration(tap, 'after configuration');
});

test('after configuration: variable meta and special feature /1024//102', async () => {
  await checkVersionGatedKeys(main.tap, 'after configuration');
});

test('after configuration: target-domain variables live in the simulated RAM (write, read back)', async () => {
  const vars = main.tap.service.variable;
  expectStatus('POST /1029/1/5 (admin, float 21.5)', await call('POST /1029/1/5', () => vars.setValue(1, f32(21.5))), ResultCode.OK);
  expectStatus('PUT /1029/3/4 (admin, 0xdeadbeef)', await call('PUT /1029/3/4', () => vars.putValue(3, u32(0xdeadbeef))), ResultCode.OK);
  const v1 = expectOkBody('GET /1029/1/4', await call('GET /1029/1/4', () => vars.getValue(1)));
  const v3 = expectOkBody('GET /1029/3/4', await call('GET /1029/3/4', () => vars.getValue(3)));
  assert.equal(hex(v1), hex(f32(21.5)), `variable 1 read back${wireLog()}`);
  assert.equal(hex(v3), 'deadbeef', `variable 3 read back${wireLog()}`);
  values[1] = hex(v1);
  values[3] = hex(v3);
});

test('after configuration: each profile gets its ACL rights (GET /1029/{id}/3)', async () => {
  for (const who of ['admin', 'anonymous', 'user1', 'user2', 'bob']) {
    await become(main.tap, who);
    await checkCurrentAccess(main.tap, who, 'after configuration');
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 3. restart on the same --state directory

/** Stop the device (SIGINT, exit 0), start it again on the same --state directory, reconnect as `label`. */
async function restartDevice(label) {
  await main.close();
  main = undefined;
  await device.stop();
  device = undefined;
  const files = readdirSync(stateDir).filter((f) => statSync(path.join(stateDir, f)).size > 0);
  // the simulated target RAM is not part of the flash image: target-domain values are not checked after restart
  for (const v of VARIABLES) if (v.domain === 0) values[v.id] = undefined;
  device = await startDevice(['--state', stateDir]);
  main = await connectTap(device.port, { label });
  assert.ok(files.length > 0, `the device saved nothing in its --state directory ${stateDir} (persistence not wired?)`);
}

test('restart (SIGINT, same --state): the configuration and the rights are still there', async () => {
  await restartDevice('A2');
  await login(main.tap, 'admin', 'admin');
  await checkConfiguration(main.tap, 'after restart');
  for (const who of ['anonymous', 'user1', 'user2', 'bob', 'admin']) {
    await become(main.tap, who);
    await checkCurrentAccess(main.tap, who, 'after restart');
  }
});

test('after restart: variable meta and special feature /1024//102', async () => {
  await checkVersionGatedKeys(main.tap, 'after restart');
});

// ---------------------------------------------------------------------------------------------------------------
// 4. rights

test('anonymous reads bundle 1 (anonymous read entry) but not bundle 2 (0x81)', async () => {
  const { tap } = main;
  await become(tap, 'anonymous');
  const b1 = expectOkBody('anonymous GET /1028/1/1', await call('GET /1028/1/1', () => tap.service.bundle.getValues(1)));
  assert.deepEqual(idsOf(decodeTlv('GET /1028/1/1', b1)), [1, 2], `anonymous GET /1028/1/1: variable ids of the TLV 0x${hex(b1)}`);
  expectStatus('anonymous GET /1028/2/1', await call('GET /1028/2/1', () => tap.service.bundle.getValues(2)), ResultCode.UNAUTHORIZED);
  expectStatus('anonymous GET /1029/3/4', await call('GET /1029/3/4', () => tap.service.variable.getValue(3)), ResultCode.UNAUTHORIZED);
  expectStatus('anonymous PUT /1029/1/4', await call('PUT /1029/1/4', () => tap.service.variable.putValue(1, f32(1))), ResultCode.UNAUTHORIZED);
});

test('bundle ACL transitions (tap.service.bundle.putAcl as admin): anonymous 0x81 before, success after, and back', async () => {
  const { tap } = main;
  const bundle = tap.service.bundle;
  const anonymousReads = async (id, expected, step) => {
    await become(tap, 'anonymous');
    const r = await call(`GET /1028/${id}/1`, () => bundle.getValues(id));
    expectStatus(`${step}: anonymous GET /1028/${id}/1`, r, expected);
    if (expected === ResultCode.OK) {
      const ids = idsOf(decodeTlv(`GET /1028/${id}/1`, r.rawBody()));
      assert.deepEqual(ids, VARIABLES.filter((v) => v.bundle === id).map((v) => v.id), `${step}: ids of bundle ${id}`);
    }
  };
  const putAcl = async (id, rights, step) => {
    await become(tap, 'admin');
    const r = await call(`PUT /1028/${id}/0`, () => bundle.putAcl(id, { groupId: ANONYMOUS_ID, ...rights }));
    expectStatus(`${step}: admin PUT /1028/${id}/0 ${JSON.stringify(rights)}`, r, ResultCode.OK);
  };
  // bundle 2 has no anonymous entry: add one, then revoke it (41 00 00)
  await anonymousReads(2, ResultCode.UNAUTHORIZED, 'bundle 2 before');
  await putAcl(2, R, 'add anonymous read on bundle 2');
  await anonymousReads(2, ResultCode.OK, 'bundle 2 after adding');
  await putAcl(2, NONE, 'revoke anonymous on bundle 2');
  await anonymousReads(2, ResultCode.UNAUTHORIZED, 'bundle 2 after revoking');
  // bundle 1 has one: revoke it, then give it back
  await putAcl(1, NONE, 'revoke anonymous on bundle 1');
  await anonymousReads(1, ResultCode.UNAUTHORIZED, 'bundle 1 after revoking');
  await putAcl(1, R, 'give anonymous read back on bundle 1');
  await anonymousReads(1, ResultCode.OK, 'bundle 1 after giving it back');
});

/** Writes of `who`: success on its writable bundle, 0x81 on the other one. */
async function checkWrites(who, writes) {
  const { tap } = main;
  await become(tap, who);
  const vars = tap.service.variable;
  for (const { id, method, value } of writes) {
    const v = variable(id);
    const allowed = RIGHTS[who][v.bundle].write;
    const what = `${who} ${method === 'put' ? 'PUT' : 'POST'} /1029/${id}/${method === 'put' ? 4 : 5} 0x${hex(value)}`;
    const r = await call(what, () => (method === 'put' ? vars.putValue(id, value) : vars.setValue(id, value)));
    expectStatus(what + (allowed ? '' : ` (bundle ${v.bundle} not writable by ${who})`), r, allowed ? ResultCode.OK : ResultCode.UNAUTHORIZED);
    if (allowed) values[id] = hex(value);
  }
  for (const v of VARIABLES) {
    const r = await call(`GET /1029/${v.id}/4`, () => vars.getValue(v.id));
    if (RIGHTS[who][v.bundle].read) {
      const value = expectOkBody(`${who} GET /1029/${v.id}/4`, r);
      if (values[v.id] !== undefined) assert.equal(hex(value), values[v.id], `${who}: value of variable ${v.id}${wireLog()}`);
    } else {
      expectStatus(`${who} GET /1029/${v.id}/4 (bundle ${v.bundle} not readable by ${who})`, r, ResultCode.UNAUTHORIZED);
    }
  }
}

test('user1 writes the variables of bundle 1; bundle 2 gives 0x81', async () => {
  await checkWrites('user1', [
    { id: 1, method: 'put', value: f32(12.5) },
    { id: 2, method: 'post', value: Buffer.from('00050006', 'hex') },
    { id: 3, method: 'put', value: u32(1) },
    { id: 4, method: 'post', value: u32(2) },
  ]);
});

test('user2 writes the variables of bundle 2; bundle 1 gives 0x81', async () => {
  await checkWrites('user2', [
    { id: 3, method: 'put', value: u32(0xcafebabe) },
    { id: 4, method: 'post', value: u32(0x0badf00d) },
    { id: 1, method: 'put', value: f32(3) },
    { id: 2, method: 'post', value: Buffer.from('00030004', 'hex') },
  ]);
});

test('bob (alias user1) has the rights of user1', async () => {
  await checkWrites('bob', [
    { id: 2, method: 'put', value: Buffer.from('00070008', 'hex') },
    { id: 4, method: 'put', value: u32(3) },
  ]);
});

test('GET /1029//4 (tap.service.variable.getAllValues / readProfile) returns exactly the readable variables', async () => {
  const { tap } = main;
  for (const who of ['anonymous', 'user1', 'user2', 'bob', 'admin']) {
    await become(tap, who);
    const r = await call('GET /1029//4', () => tap.service.variable.getAllValues());
    const all = expectOkBody(`${who} GET /1029//4`, r);
    assert.deepEqual(idsOf(all), readableIds(who), `${who} GET /1029//4: variable ids of the TLV 0x${hex(r.rawBody())}${wireLog()}`);
    for (const id of idsOf(all)) {
      if (values[id] !== undefined) assert.equal(hex(all[id]), values[id], `${who} GET /1029//4: value of variable ${id}${wireLog()}`);
    }
  }
});

test('tap.configurator.applyConfig (PUT + POST /1024//10) saves: after a restart the new version and the in-device values are kept', async () => {
  await become(main.tap, 'admin');
  try {
    await main.tap.configurator.applyConfig('1.2.4');
  } catch (err) {
    const last = main.frames.at(-1);
    assert.fail(
      `tap.configurator.applyConfig('1.2.4') failed on ${last ? describeRequestFrame(last) : '?'}, ` +
        `status ${hexStatus(statusOfError(err))}: ${err.code}: ${err.message}${wireLog()}`,
    );
  }
  const sent = main.frames.slice(-2).map(describeRequestFrame);
  assert.deepEqual(sent, ['PUT /1024//10 body 01020004', 'POST /1024//10'], 'requests of applyConfig');
  await restartDevice('A3');
  await login(main.tap, 'admin', 'admin');
  const version = expectOkBody('after restart: GET /1024//10', await call('GET /1024//10', () => main.tap.service.interface.getConfigVersion()));
  assert.equal(version, '1.2.4', `after applyConfig and restart: config version /1024//10${wireLog()}`);
  for (const v of VARIABLES.filter((x) => x.domain !== 0)) {
    const value = expectOkBody(`after restart: GET /1029/${v.id}/4`, await call(`GET /1029/${v.id}/4`, () => main.tap.service.variable.getValue(v.id)));
    assert.equal(hex(value), values[v.id], `after applyConfig and restart: value of in-device variable ${v.id} (written by the users before the save)${wireLog()}`);
  }
});

// ---------------------------------------------------------------------------------------------------------------
// 5. one interlocutor

/** Send GET /1024//7 on `conn` until it succeeds (at most `ms`); returns the number of attempts. */
async function waitUntilServed(conn, ms, what) {
  const deadline = Date.now() + ms;
  let attempts = 0;
  for (;;) {
    attempts++;
    const r = await call(`${what}: GET /1024//7`, () => conn.tap.service.interface.getCurrentGroupId());
    if (r.status === ResultCode.OK) {
      assert.equal(r.body(), ANONYMOUS_ID, `${what}: a new session must start anonymous, GET /1024//7 = ${hexStatus(r.body())}${wireLog()}`);
      return attempts;
    }
    if (Date.now() >= deadline) {
      assert.fail(`${what}: still ${statusName(r.status)} after ${attempts} attempts over ${ms} ms${wireLog()}`);
    }
    await sleep(50);
  }
}

test('one interlocutor: a second connection gets 0xA8 while the first owns the session, then gets through once it closes', async () => {
  const first = main;
  await become(first.tap, 'admin'); // the owner sent requests (admin: independent of the configuration above)
  const second = await connectTap(device.port, { label: 'B' });
  others.push(second);
  expectStatus(
    'second connection GET /3//2 while the first owns the session',
    await call('GET /3//2', () => second.tap.service.device.getSerialNumber()),
    ResultCode.DEVICE_UNAVAILABLE,
  );
  expectStatus(
    'second connection GET /1024//7 while the first owns the session',
    await call('GET /1024//7', () => second.tap.service.interface.getCurrentGroupId()),
    ResultCode.DEVICE_UNAVAILABLE,
  );
  // the owner is not disturbed
  const gid = expectOkBody('first connection GET /1024//7', await call('GET /1024//7', () => first.tap.service.interface.getCurrentGroupId()));
  assert.equal(gid, ADMIN_ID, `first connection still logged in as admin${wireLog()}`);
  await first.close();
  main = second; // the second connection becomes the main one
  await waitUntilServed(second, 1000, 'second connection after the first closed');
});

test('one interlocutor: after the owner idles past /1024//34 (2 s), another connection gets through', async () => {
  const owner = main;
  await become(owner.tap, 'admin');
  expectStatus('PUT /1024//34 2 s', await call('PUT /1024//34', () => owner.tap.service.interface.putHostInactivityPeriod(2)), ResultCode.OK);
  const period = expectOkBody('GET /1024//34', await call('GET /1024//34', () => owner.tap.service.interface.getHostInactivityPeriod()));
  assert.equal(period, 2, `GET /1024//34 after PUT 2${wireLog()}`);
  const idleSince = Date.now();
  const third = await connectTap(device.port, { label: 'C' });
  others.push(third);
  expectStatus(
    'third connection GET /1024//7 while the owner is active',
    await call('GET /1024//7', () => third.tap.service.interface.getCurrentGroupId()),
    ResultCode.DEVICE_UNAVAILABLE,
  );
  await sleep(Math.max(0, idleSince + 2300 - Date.now()));
  await waitUntilServed(third, 1500, 'third connection after the owner idled 2 s');
  // the idle owner lost the session: it is now the one refused
  expectStatus(
    'former owner GET /1024//7 after its session expired',
    await call('GET /1024//7', () => owner.tap.service.interface.getCurrentGroupId()),
    ResultCode.DEVICE_UNAVAILABLE,
  );
});

// ---------------------------------------------------------------------------------------------------------------
// the configurator's default flow

test("the configurator's default flow (factory reset POST /3//5 first) completes on one connection", async () => {
  // Separate device without state: the factory reset must not touch the device above.
  const other = await startDevice();
  const conn = await connectTap(other.port, { label: 'F' });
  try {
    await login(conn.tap, 'admin', 'admin');
    const { error, frames } = await runConfigurator(conn, {});
    const described = frames.map(describeRequestFrame);
    assert.equal(described[1], 'POST /3//5', `the default flow starts with a factory reset: ${described.join(', ')}`);
    if (error) {
      const last = frames.at(-1);
      const status = statusOfError(error);
      assert.fail(
        `the configurator (default flow) failed on ${last ? describeRequestFrame(last) : '?'} (frame ${last ? hex(last) : '?'}), ` +
          `${status === undefined ? `no answer (WebSocket ${conn.protocol.ws.readyState === 3 ? 'closed by the device' : 'open'})` : `status ${hexStatus(status)}`}` +
          `: ${error.code}: ${error.message}` +
          `\n  (it neither reconnects nor logs in again after POST /3//5: the link and the admin session must survive it)${wireLog()}`,
      );
    }
  } finally {
    await conn.close();
    await other.stop();
  }
});
