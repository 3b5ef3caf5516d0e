// Interop test "coverage": the report of coverage.mjs as a test. Every safe service call of the real client
// (`@iotize/tap` 2.7.0: reads, and write-back-then-read round trips; see coverage.mjs) runs against `port-linux`
// started with its demo configuration, which gives the bundle and variable calls a bundle and variables to run
// on. A call counts as answered the way the client expects when its value decoded, its round trip read back
// equal, or it was refused with exactly the status of its entry in DOCUMENTED_REFUSALS.
//
// Asserted: the table holds (each documented call answers exactly its status, each entry names a call that
// runs), no call is answered wrongly (round trip differs, decoder rejected, an undocumented error status other
// than not found / not implemented), none is left unanswered (timeout, dropped connection, lost session, client
// error), and at least MIN_PERCENT % of them are answered as the client expects. The figure and every call not
// covered, with its reason, and every documented refusal with its reason, are printed as diagnostics whatever the outcome (`node coverage.mjs` prints the
// whole report).

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { DOCUMENTED_REFUSALS, runCoverage } from './coverage.mjs';

const MIN_PERCENT = 90;

let result;

before(async () => {
  result = await runCoverage({ demo: true });
});

const lines = (calls) => calls.map((c) => `\n  ${c.line}`).join('');

test('the figure and the calls not covered', (t) => {
  for (const line of [...result.figureLines, ...result.notCoveredLines, ...result.documentedLines]) t.diagnostic(line);
});

test('the demo gives the bundle and variable calls instances that exist', () => {
  // Without them every bundle and variable call would run on ids that answer 0x84, and the figure would say
  // nothing about those services.
  const { instances, ids } = result;
  assert.ok(instances.bundleId.length > 0, 'no bundle answered bundle.getName on ids 0-16: is the demo configuration loaded?');
  assert.ok(instances.variableId.length > 0, 'no variable answered variable.getType on ids 0-16: is the demo configuration loaded?');
  // the demo's: bundle 1 and its five variables
  assert.deepEqual(instances.bundleId, [1], `bundles found: ${instances.bundleId}`);
  assert.deepEqual(instances.variableId, [1, 2, 3, 4, 5], `variables found: ${instances.variableId}`);
  assert.ok([4, 5].includes(ids.variableId[0]), `the variable calls run on variable ${ids.variableId[0]}: not one the device keeps (4, 5)`);
});

test('documented refusals: each call of the table is refused with exactly its status', () => {
  const stale = result.calls.filter((c) => c.category === 'stale');
  assert.deepEqual(
    result.tableErrors,
    [],
    `entries of DOCUMENTED_REFUSALS that check nothing (table out of date):\n  ${result.tableErrors.join('\n  ')}`,
  );
  assert.equal(
    stale.length,
    0,
    `documented refusal no longer holds (table out of date: fix the device or the table) for ${stale.length} call(s):${lines(stale)}`,
  );
  assert.equal(result.figure.documented, Object.keys(DOCUMENTED_REFUSALS).length, `documented refusals counted${lines(result.documented)}`);
});

test('no safe call is answered wrongly', () => {
  const wrong = result.wrong.filter((c) => c.category !== 'stale'); // those fail the test above
  assert.equal(wrong.length, 0, `${wrong.length} call(s) answered wrongly (round trip differs, decoder rejected, undocumented error status):${lines(wrong)}`);
  assert.deepEqual(result.pathMismatches, [], 'requests sent other than their resources entries describe');
});

test('no safe call is left unanswered', () => {
  const { unanswered } = result;
  assert.equal(unanswered.length, 0, `${unanswered.length} call(s) left unanswered (timeout, dropped, session lost, client error):${lines(unanswered)}` +
    (result.events.length ? `\n  events:\n    ${result.events.join('\n    ')}` : ''));
});

test('no safe call is refused without a documented reason', () => {
  // An undocumented 0x84 / 0xA1 is neither wrong nor unanswered, but a refusal nobody explained: the table says
  // why each refusal is right, and everything else must answer.
  const absent = result.calls.filter((c) => c.category === 'absent');
  assert.equal(absent.length, 0, `${absent.length} call(s) refused 0x84/0xA1 without an entry in DOCUMENTED_REFUSALS:${lines(absent)}`);
});

test(`at least ${MIN_PERCENT} % of the safe calls are answered as the client expects`, () => {
  const { answered, safe, percent } = result.figure;
  assert.ok(
    answered * 100 >= MIN_PERCENT * safe,
    `${answered} / ${safe} = ${percent.toFixed(1)} % answered as the client expects, below ${MIN_PERCENT} %; not covered:${lines(result.notCovered)}`,
  );
});

test('the device exits with code 0 on SIGINT after the run', () => {
  assert.equal(result.stopError, undefined, `device stop: ${result.stopError}`);
});
