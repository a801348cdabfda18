// Every conformance vector, one node test each (conformance_runner.js is
// the same as a script, for `just conformance`).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cases, runCase } from './conformance_runner.js';

const all = cases();

test('the vectors are there', () => {
  assert.ok(all.length > 0, 'no conformance vectors found');
});

for (const [identity, c] of all) {
  test(identity, () => {
    assert.equal(runCase(c), null);
  });
}
