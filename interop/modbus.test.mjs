// Interop test: the real npm client `@iotize/tap@2.7.0` drives `port-linux --modbus` against a real
// Modbus TCP server (pymodbus, `ports/linux/tests/modbus/server.py`) on loopback: the target protocol
// selected and configured, the target connected, holding registers read and written with `/1027//38`
// and `/1027//37`, a TARGET variable on a holding register read and written (checked on the server
// with a bare pymodbus client), a bundle of adjacent registers read (in one transaction), a missing register,
// the server stopped mid-session and started again.
//
// Skipped unless LWM2M_PYTHON names a Python with pymodbus (`cargo xtask test` sets it up). Every
// request is made by the client's own services.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import {
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

const { TargetProtocol } = require('@iotize/tap');
const { TlvBundleConverter } = require('@iotize/tap/client/impl');

const PYTHON = process.env.LWM2M_PYTHON;
const skip = !PYTHON ? 'set LWM2M_PYTHON to a Python with pymodbus (cargo xtask test does)' : false;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const MODBUS = path.join(HERE, '..', 'ports', 'linux', 'tests', 'modbus');

// ModbusOptions.ObjectType and VariableFormat of the client.
const HOLDING_REGISTER = 3;
const COIL = 1;
const _16_BITS = 2;
const _1_BIT = 0;

/** Start the pymodbus server on `port` (0: a free one); resolves with { child, port }. */
function startServer(port) {
  const child = spawn(PYTHON, [path.join(MODBUS, 'server.py'), String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk) => (output += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the Modbus server did not start: ${output}`)), 20_000);
    child.stdout.on('data', (chunk) => {
      const found = /listening (\d+)/.exec(String(chunk));
      if (found) {
        clearTimeout(timer);
        resolve({ child, port: Number(found[1]) });
      }
    });
    child.once('exit', (code) => reject(new Error(`the Modbus server exited (${code}): ${output}`)));
  });
}

async function stopServer(server) {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGKILL');
  await exited;
}

/** Holding registers of unit 1 as the server holds them, read by a bare pymodbus client. */
function serverHolding(port, address, count) {
  const out = execFileSync(PYTHON, [path.join(MODBUS, 'client.py'), String(port), 'read', '1', String(address), String(count)], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return String(out).trim().split('\n').map(Number);
}

let server;
let device;
let conn;
let tap;

before(async () => {
  if (skip) return;
  server = await startServer(0);
  device = await startDevice(['--modbus', `127.0.0.1:${server.port}`]);
  conn = await connectTap(device.port, { label: 'modbus' });
  tap = conn.tap;
  await login(tap, 'admin', 'admin');
});

after(async () => {
  if (conn) await conn.close();
  if (device) await device.stop();
  if (server) await stopServer(server);
});

const holding = (address, length) => ({ objectType: HOLDING_REGISTER, slave: 1, address, length, format: _16_BITS });

test('MODBUS selected, configured and connected', { skip }, async () => {
  const target = tap.service.target;
  const available = expectOkBody('GET /1027//20', await call('GET /1027//20', () => target.getAvailableProtocols()));
  assert.ok(available.includes(TargetProtocol.MODBUS), `MODBUS among ${available}${wireLog()}`);
  expectOkBody('PUT /1027//1', await call('PUT /1027//1', () => target.putProtocol(TargetProtocol.MODBUS)));
  const configuration = {
    modbus: { slave: 1, offsetFirstRegister: false },
    // The serial fields mean nothing to Modbus TCP; timeout 5: 500 ms.
    serial: { baudRate: 115200, physicalPort: 1, stopBits: 0, bitParity: 0, dataBits: 1, handshakeDelimiter: 0, hardwareFlowControl: 0, timeout: 5 },
  };
  expectOkBody('PUT /1027//21', await call('PUT /1027//21', () => target.putSerialModbusConfiguration(configuration)));
  expectOkBody('POST /1027//3', await call('POST /1027//3', () => target.connect()));
  assert.equal(expectOkBody('GET /1027//3', await call('GET /1027//3', () => target.isConnected())), true);
});

test('holding registers read and written with /1027//38 and /1027//37', { skip }, async () => {
  const target = tap.service.target;
  const read = expectOkBody('GET /1027//38', await call('GET /1027//38', () => target.modbusRead(holding(10, 2))));
  assert.equal(hex(read), '03f203f3', `holding registers 10 and 11: 1010, 1011${wireLog()}`);
  const data = Uint8Array.from([0x12, 0x34, 0xab, 0xcd]);
  expectOkBody('POST /1027//37', await call('POST /1027//37', () => target.modbusWrite({ options: holding(30, 2), data })));
  assert.deepEqual(serverHolding(server.port, 30, 2), [0x1234, 0xabcd], 'the server holds what was written');
  const back = expectOkBody('GET /1027//38', await call('GET /1027//38', () => target.modbusRead(holding(30, 2))));
  assert.equal(hex(back), '1234abcd');
  // Coils: one byte an item.
  const coils = expectOkBody('GET /1027//38', await call('coils', () => target.modbusRead({ objectType: COIL, slave: 1, address: 0, length: 4, format: _1_BIT })));
  assert.equal(hex(coils), '00010001');
});

test('a TARGET variable on a holding register reads and writes the server', { skip }, async () => {
  const vars = tap.service.variable;
  expectOkBody('POST /1029/3/65535', await call('create variable 3', () => vars.create(3)));
  expectOkBody('PUT /1029/3/1', await call('type of variable 3', () => vars.putType(3, { domain: 0, data: 0x22 })));
  expectOkBody(
    'PUT /1029/3/0',
    await call('address of variable 3', () => vars.putModbusVariableAddress(3, { functionCode: 3, slave: 1, address: 40 })),
  );
  const value = expectOkBody('GET /1029/3/4', await call('read variable 3', () => vars.getValue(3)));
  assert.equal(hex(value), '0410', `holding register 40 holds 1040${wireLog()}`);
  expectOkBody('PUT /1029/3/4', await call('write variable 3', () => vars.putValue(3, Uint8Array.from([0x0b, 0xad]))));
  assert.deepEqual(serverHolding(server.port, 40, 1), [0x0bad], 'the server holds the new value');
});

test('a bundle of adjacent holding registers reads the values the server holds', { skip }, async () => {
  // Variable 5: UINT16 on register 60, 6: UINT32 on 61-62: read in one transaction.
  const vars = tap.service.variable;
  expectOkBody('POST /1028/7/65535', await call('create bundle 7', () => tap.service.bundle.create(7)));
  for (const [id, data, address] of [[5, 0x22, 60], [6, 0x23, 61]]) {
    expectOkBody(`POST /1029/${id}/65535`, await call(`create variable ${id}`, () => vars.create(id)));
    expectOkBody(`PUT /1029/${id}/1`, await call(`type of ${id}`, () => vars.putType(id, { domain: 0, data })));
    expectOkBody(
      `PUT /1029/${id}/0`,
      await call(`address of ${id}`, () => vars.putModbusVariableAddress(id, { functionCode: 3, slave: 1, address })),
    );
    expectOkBody(`PUT /1029/${id}/6`, await call(`bundle of ${id}`, () => vars.putBundleId(id, 7)));
  }
  const raw = expectOkBody('GET /1028/7/1', await call('GET /1028/7/1', () => tap.service.bundle.getValues(7)));
  const values = new TlvBundleConverter().decode(Uint8Array.from(raw));
  assert.equal(hex(values[5]), '0424', `register 60 holds 1060: 0x${hex(raw)}${wireLog()}`);
  assert.equal(hex(values[6]), '04250426', `registers 61-62 hold 1061, 1062: 0x${hex(raw)}`);
});

test('a register the server lacks is its exception, as B3', { skip }, async () => {
  const response = await call('GET /1027//38', () => tap.service.target.modbusRead(holding(199, 2)));
  expectStatus('a read beyond the server\'s registers', response, 0xb3);
});

test('the server stopped mid-session, then started again', { skip }, async () => {
  const target = tap.service.target;
  const port = server.port;
  await stopServer(server);
  server = null;
  const started = Date.now();
  const failed = await call('GET /1027//38', () => target.modbusRead(holding(10, 1)));
  assert.ok([0xa5, 0xb6, 0xb7].includes(failed.status), `a stopped server: A5/B6/B7, got 0x${failed.status.toString(16)}${wireLog()}`);
  assert.ok(Date.now() - started < 3000, 'within the timeout, bounded');
  // The device still answers: keep-alive and other requests.
  expectOkBody('GET /1024//4', await call('keep-alive GET /1024//4', () => tap.service.interface.keepAlive()));
  expectOkBody('GET /3//2', await call('GET /3//2', () => tap.service.device.getSerialNumber()));
  server = await startServer(port);
  let read;
  for (let attempt = 0; attempt < 20; attempt++) {
    read = await call('GET /1027//38', () => target.modbusRead(holding(10, 1)));
    if (read.status === 0) break;
    await sleep(100);
  }
  assert.equal(hex(expectOkBody('GET /1027//38 after the server returned', read)), '03f2');
});

// ---------------------------------------------------------------------------------------------------------------
// The Modbus-slave side handler (`--modbus-slave`): a bare pymodbus client is the master; variable `id` is the
// block of holding registers from `id × 32`; requests run with the rights of `--modbus-slave-profile`
// (anonymous here), outside the session the real client holds.

/** A free loopback port (bound, then released for the device to bind). */
async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A bare pymodbus client command against the slave: stdout, or the error it exits with. */
function master(port, args) {
  try {
    return { out: String(execFileSync(PYTHON, [path.join(MODBUS, 'client.py'), String(port), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })).trim() };
  } catch (err) {
    return { error: String(err.stderr || err.message) };
  }
}

test('a Modbus master reads and writes variables through --modbus-slave, the session undisturbed', { skip }, async () => {
  const slavePort = await freePort();
  const side = await startDevice(['--modbus-slave', `127.0.0.1:${slavePort}`]);
  const sideConn = await connectTap(side.port, { label: 'slave' });
  try {
    const t = sideConn.tap;
    await login(t, 'admin', 'admin');
    // Bundle 1 readable and writable by anonymous, holding variable 5 (an in-device UINT32); variable 6 (an
    // in-device UINT16) in bundle 2, on which anonymous has no right.
    const { bundle, variable: vars } = t.service;
    expectOkBody('POST /1028/1/65535', await call('create bundle 1', () => bundle.create(1)));
    expectOkBody('PUT /1028/1/0', await call('ACL of bundle 1', () => bundle.putAcl(1, { groupId: 0, read: true, write: true })));
    expectOkBody('POST /1028/2/65535', await call('create bundle 2', () => bundle.create(2)));
    for (const [id, data, bundleId] of [[5, 0x23, 1], [6, 0x22, 2]]) {
      expectOkBody(`POST /1029/${id}/65535`, await call(`create variable ${id}`, () => vars.create(id)));
      expectOkBody(`PUT /1029/${id}/1`, await call(`type of ${id}`, () => vars.putType(id, { domain: 3, data })));
      expectOkBody(`PUT /1029/${id}/6`, await call(`bundle of ${id}`, () => vars.putBundleId(id, bundleId)));
    }
    expectOkBody('PUT /1029/5/4', await call('value of 5', () => vars.putValue(5, Uint8Array.from([0x00, 0x01, 0x02, 0x03]))));
    const group = () => t.service.interface.getCurrentGroupId();
    assert.equal(expectOkBody('GET /1024//7', await call('GET /1024//7', group)), 0xffff);

    // The master reads variable 5 (two registers at 160), writes it, reads it back.
    assert.deepEqual(master(slavePort, ['read', '1', '160', '2']), { out: '1\n515' });
    assert.deepEqual(master(slavePort, ['write', '1', '160', '0xdead', '0xbeef']), { out: '' });
    assert.deepEqual(master(slavePort, ['read', '1', '160', '2']), { out: '57005\n48879' });
    // Variable 6: no right for anonymous, an exception (illegal data address); a block that is no variable too.
    const refused = master(slavePort, ['read', '1', '192', '1']);
    assert.match(refused.error || '', /exception_code=2/, `variable 6 refused: ${JSON.stringify(refused)}`);
    assert.match(master(slavePort, ['read', '1', '161', '1']).error || '', /exception_code=2/);

    // The real client's session is undisturbed: still admin, and it sees the master's write.
    assert.equal(expectOkBody('GET /1024//7', await call('GET /1024//7', group)), 0xffff);
    const value = expectOkBody('GET /1029/5/4', await call('GET /1029/5/4', () => vars.getValue(5)));
    assert.equal(hex(value), 'deadbeef');
  } finally {
    await sideConn.close();
    await side.stop();
  }
});
