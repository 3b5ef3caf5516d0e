// Interop test "Blobs": the real npm client `@iotize/tap@2.7.0` sends a ~1 000-byte TLS client certificate
// (`putCertificatePublicKeyAppendCalls`, /1024//37), an MQTT broker certificate (`putBrokerCertificateAppendCalls`,
// /1024//57) and JVM byte code (`appendCodeAppendCalls`, /1024//74) in its own 220-byte chunks, one PUT each: every
// chunk must be answered success. The device keeps them in `--state DIR/blobs.flash`; after a restart its log
// reports them (objects.md object 1024, protocol.md §2.2 "append" resources).
//
// Every request is produced by the client's services (`…AppendCalls` builds the chunked calls, the service's own
// runner sends them); nothing is hand-made.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ResultCode, call, connectTap, deviceLog, expectStatus, login, logout, require, startDevice, statusOfError, wireLog } from './harness.mjs';

require('@iotize/tap/service/impl/mqtt'); // registers tap.service.mqtt
require('@iotize/tap/service/impl/jvm'); // registers tap.service.jvm

process.env.RUST_LOG = 'info'; // the device reports the blobs it finds at boot

const state = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-interop-blobs-'));
let device;
let conn;

/** A PEM certificate of exactly `n` bytes. */
function pem(n) {
  const head = '-----BEGIN CERTIFICATE-----\n';
  const tail = '\n-----END CERTIFICATE-----\n';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let body = '';
  for (let i = 0; body.length < n - head.length - tail.length; i++) body += alphabet[(i * 7) % 64];
  return Buffer.from(head + body + tail);
}

/** Sends the client's chunked calls of `calls` through `service`'s runner; every answer must be success. */
async function sendChunks(what, service, calls, length) {
  assert.equal(calls.length, Math.ceil(length / 220), `${what}: the client splits ${length} bytes in 220-byte chunks`);
  for (const [i, chunk] of calls.entries()) {
    const response = await call(`${what} chunk ${i}`, () => service.serviceCallRunner.execute(chunk));
    expectStatus(`${what} chunk ${i} (${chunk.body.length} bytes)`, response, ResultCode.OK);
  }
}

before(async () => {
  device = await startDevice(['--state', state]);
  conn = await connectTap(device.port, { label: 'blobs' });
  await login(conn.tap, 'admin', 'admin');
});

after(async () => {
  if (conn) await conn.close();
  if (device) await device.stop();
  rmSync(state, { recursive: true, force: true });
});

test('a 1 000-byte client certificate and its key, chunk by chunk: every chunk 90 00-success', async () => {
  const iface = conn.tap.service.interface;
  const cert = pem(1000);
  await sendChunks('putCertificatePublicKey', iface, iface.putCertificatePublicKeyAppendCalls(cert), cert.length);
  const key = Buffer.from('-----BEGIN PRIVATE KEY-----\n' + 'k'.repeat(400) + '\n-----END PRIVATE KEY-----\n');
  await sendChunks('putCertificatePrivateKey', iface, iface.putCertificatePrivateKeyAppendCalls(key), key.length);
});

test('the MQTT broker certificate and JVM code the same way; clearCode clears', async () => {
  const mqtt = conn.tap.service.mqtt;
  const ca = pem(1000);
  await sendChunks('putBrokerCertificate', mqtt, mqtt.putBrokerCertificateAppendCalls(ca), ca.length);
  const jvm = conn.tap.service.jvm;
  const code = Buffer.alloc(700, 0xca);
  await sendChunks('appendCode', jvm, jvm.appendCodeAppendCalls(code), code.length);
  expectStatus('clearCode', await call('clearCode', () => jvm.clearCode()), ResultCode.OK);
});

test('anonymous cannot append: 0x81', async () => {
  await logout(conn.tap);
  const mqtt = conn.tap.service.mqtt;
  const [chunk] = mqtt.putBrokerCertificateAppendCalls(pem(300));
  let status;
  try {
    status = (await mqtt.serviceCallRunner.execute(chunk)).status;
  } catch (err) {
    status = statusOfError(err);
  }
  assert.equal(status, ResultCode.UNAUTHORIZED, `anonymous putBrokerCertificate answered ${status}${wireLog()}`);
});

test('after a restart the device still holds the certificates', async () => {
  await conn.close();
  conn = undefined;
  await device.stop();
  device = await startDevice(['--state', state]);
  conn = await connectTap(device.port, { label: 'blobs after restart' });
  // The boot log is written before the device listens.
  const log = deviceLog();
  for (const line of ['blob /1024//37: 1000 bytes', 'blob /1024//57: 1000 bytes']) {
    assert.ok(log.includes(line), `the device does not report "${line}"${log}`);
  }
  assert.ok(!log.includes('blob /1024//74'), `the JVM code was cleared${log}`);
});
