// Prepared (conformance/HOSTS.md, section 5): the same decisions and
// errors as evaluate on the same numbers, one guest call per decision once
// the numbers are held, and after a fault a fresh instance that numbers
// everything again.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import * as d from '../src/index.js';
import { Instance } from '../src/runtime.js';

const TREE = [{ id: 'org' }, { id: 'dept', parent: 'org' }, { id: 'team', parent: 'dept' }, { id: 'ops', parent: 'org' }];
const LIMITS = {
  registered: [{ resource: 'servers', limit: 10n }],
  project: [{ project: 'dept', resource: 'servers', limit: 6n }],
};
const PATH = ['team', 'dept', 'org'];
const GENERATIONS = [3n, 5n, 9n];

/** The same decision as a one-shot evaluate, usage in path form. */
function evaluateOf(request, local, subtree, config) {
  const names = Array.isArray(request.deltas) ? request.deltas.map((x) => x.resource) : Object.keys(request.deltas);
  const snapshot = {
    projects: TREE,
    limits: LIMITS,
    usage: {
      local: names.map((resource, r) => ({ resource, usage: local[r] })),
      subtree: subtree.map((usage, i) => ({ project: PATH[Math.floor(i / names.length)], resource: names[i % names.length], usage })),
    },
    generations: PATH.map((project, k) => ({ project, generation: GENERATIONS[k] })),
  };
  return d.evaluate(snapshot, request, config);
}

const outcome = (fn) => {
  try {
    return ['ok', fn()];
  } catch (e) {
    if (!(e instanceof d.InvalidInput)) throw e;
    return ['error', e.kind, e.message, e.fields];
  }
};

let counting = null;
afterEach(() => {
  if (counting) Instance.prototype.call = counting;
  counting = null;
});

test('a prepared decision: the path, then the claim from the path and the generations passed', () => {
  const prepared = new d.Prepared(TREE, LIMITS);
  assert.deepEqual(prepared.path('team'), PATH);
  const admitted = prepared.evaluate(
    { project: 'team', deltas: { servers: 1n } },
    { local: [1n], subtree: [1n, 3n, 7n], generations: GENERATIONS },
  );
  assert.deepEqual(admitted, {
    admitted: true,
    claim: PATH.map((project, k) => ({ project, generation: GENERATIONS[k] })),
  });
  const refused = prepared.evaluate(
    { project: 'team', deltas: { servers: 4n } },
    { local: new BigInt64Array([1n]), subtree: new BigInt64Array([1n, 3n, 7n]), generations: new BigUint64Array(GENERATIONS) },
  );
  assert.deepEqual(refused, {
    admitted: false,
    violations: [
      { project: 'dept', resource: 'servers', limit: 6n, usage: 3n, delta: 4n },
      { project: 'org', resource: 'servers', limit: 10n, usage: 7n, delta: 4n },
    ],
  });
});

test('decisions and errors are evaluate\'s for the same numbers, in evaluate\'s order', () => {
  for (const model of ['flat', 'nested']) {
    const config = { model };
    const prepared = new d.Prepared(TREE, LIMITS, config);
    const requests = [
      { project: 'team', deltas: { servers: 2n } },
      { project: 'team', deltas: { servers: 9n } },
      { project: 'team', deltas: { servers: -2n } },
      { project: '', deltas: [{ resource: '', delta: 1n }] },
      { project: 'team', deltas: [{ resource: 'cores', delta: 1n }, { resource: '', delta: 1n }, { resource: 'cores', delta: 2n }] },
      { project: 'nobody', deltas: { servers: 1n } },
      { project: 'team', deltas: { ram: 5n, servers: 1n } },
    ];
    for (const request of requests) {
      const n = Array.isArray(request.deltas) ? request.deltas.length : Object.keys(request.deltas).length;
      const local = Array.from({ length: n }, (_, r) => BigInt(r + 1));
      const subtree = Array.from({ length: 3 * n }, (_, i) => BigInt(i + 2));
      const want = outcome(() => evaluateOf(request, local, subtree, config));
      const got = outcome(() => prepared.evaluate(request, { local, subtree, generations: GENERATIONS }));
      assert.deepEqual(got, want, `${model} ${JSON.stringify(request, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`);
    }
  }
});

test('lists of the wrong length are shape-mismatch, naming the list', () => {
  const prepared = new d.Prepared(TREE, LIMITS);
  assert.throws(
    () => prepared.evaluate({ project: 'team', deltas: { servers: 1n } }, { local: [1n], subtree: [1n, 3n], generations: GENERATIONS }),
    { kind: 'shape-mismatch', field: 'subtree', expected: 3n, actual: 2n },
  );
});

test('a bad tree or limits fail the constructor, as evaluate reports them', () => {
  assert.throws(() => new d.Prepared([{ id: 'a', parent: 'b' }, { id: 'b', parent: 'a' }]), {
    kind: 'cycle',
    project: 'a',
  });
  assert.throws(() => new d.Prepared(TREE, { registered: [{ resource: 'servers', limit: -2n }] }), {
    kind: 'invalid-limit',
  });
});

test('once the numbers are held, a decision is one call into the component', () => {
  const prepared = new d.Prepared(TREE, LIMITS);
  const usage = { local: [1n], subtree: [1n, 3n, 7n], generations: GENERATIONS };
  prepared.evaluate({ project: 'team', deltas: { servers: 1n } }, usage);
  let calls = 0;
  counting = Instance.prototype.call;
  const call = counting;
  Instance.prototype.call = function counted(...args) {
    calls++;
    return call.apply(this, args);
  };
  prepared.evaluate({ project: 'team', deltas: { servers: 2n } }, usage);
  assert.equal(calls, 1);
  // A name no limit mentions costs one more (number-request) each time:
  // its number stands for its request only (numbered-request.kept).
  prepared.evaluate({ project: 'team', deltas: { cores: 0n } }, usage);
  prepared.evaluate({ project: 'team', deltas: { cores: 0n } }, usage);
  assert.equal(calls, 5);
});

test('a guest fault is thrown and the next call prepares afresh', () => {
  const prepared = new d.Prepared(TREE, LIMITS, undefined, { memoryLimit: 2 << 20 });
  // 16 MiB of numbers cannot be copied into a 2 MiB instance.
  const huge = new BigInt64Array(2 << 20);
  assert.throws(
    () => prepared.evaluate({ project: 'team', deltas: { servers: 1n } }, { local: huge, subtree: [0n, 0n, 0n], generations: GENERATIONS }),
    (e) => e instanceof d.GuestFault && e.kind === 'memory-limit',
  );
  assert.equal(prepared.live, false);
  const after = prepared.evaluate(
    { project: 'team', deltas: { servers: 1n } },
    { local: [1n], subtree: [1n, 3n, 7n], generations: GENERATIONS },
  );
  assert.equal(after.admitted, true);
  assert.equal(prepared.live, true);
});

test('numbers kept from an instance a fault dropped are not used', () => {
  const prepared = new d.Prepared(TREE, LIMITS, undefined, { memoryLimit: 2 << 20 });
  // Numbered in this order by this instance: ram, then disk (no limits:
  // re-checks, which any usage passes).
  const both = prepared.evaluate(
    { project: 'team', deltas: [{ resource: 'ram', delta: 0n }, { resource: 'disk', delta: 0n }] },
    { local: [0n, 0n], subtree: Array(6).fill(0n), generations: GENERATIONS },
  );
  assert.equal(both.admitted, true);
  assert.throws(
    () => prepared.evaluate({ project: 'team', deltas: { servers: 1n } }, { local: new BigInt64Array(2 << 20), subtree: [0n, 0n, 0n], generations: GENERATIONS }),
    d.GuestFault,
  );
  // The fresh instance has numbered neither; disk first. A stale number
  // for disk would be one it never gave (shape-mismatch).
  const disk = { project: 'team', deltas: { disk: 0n } };
  const usage = { local: [0n], subtree: [0n, 0n, 0n], generations: GENERATIONS };
  assert.deepEqual(prepared.evaluate(disk, usage), evaluateOf(disk, usage.local, usage.subtree));
  assert.equal(prepared.evaluate(disk, usage).admitted, true);
});

test('names no limit mentions do not accumulate', () => {
  // A service fed resource names from requests: 20,000 distinct 1 kB names
  // through a 4 MiB instance (each kept for its request only, by the host
  // and by the instance), then an ordinary call on the same instance.
  const prepared = new d.Prepared(TREE, LIMITS, undefined, { memoryLimit: 4 << 20 });
  const usage = { local: [0n], subtree: [0n, 0n, 0n], generations: GENERATIONS };
  for (let i = 0; i < 20000; i++) {
    const name = String(i).padStart(1000, '0');
    assert.equal(prepared.evaluate({ project: 'team', deltas: { [name]: 0n } }, usage).admitted, true);
  }
  assert.equal(prepared.live, true);
  const servers = { project: 'team', deltas: { servers: 1n } };
  const got = prepared.evaluate(servers, { local: [1n], subtree: [1n, 3n, 7n], generations: GENERATIONS });
  assert.deepEqual(got, evaluateOf(servers, [1n], [1n, 3n, 7n]));
});
