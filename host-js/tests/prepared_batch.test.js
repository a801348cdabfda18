// Prepared.evaluateBatch (prepared.evaluate-batch): members by name with
// the numbers of their paths, decided in arrival order, each against its
// own numbers plus the deltas of the members admitted before it; one
// outcome per member as Promise.allSettled's; on numbers counted from one
// snapshot, evaluateBatch's outcomes on that snapshot.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import * as d from '../src/index.js';
import { Instance } from '../src/runtime.js';

const SIBLINGS = [{ id: 'org' }, { id: 'a', parent: 'org' }, { id: 'b', parent: 'org' }];
const ORG_OF_8 = {
  registered: [{ resource: 'servers', limit: 10n }],
  project: [{ project: 'org', resource: 'servers', limit: 8n }],
};
// Read in one view: a uses 3 servers, b 2, org's subtree 5; generations a 4, b 2, org 7.
const A = (delta) => ({ request: { project: 'a', deltas: { servers: delta } }, local: [3n], subtree: [3n, 5n], generations: [4n, 7n] });
const B = (delta) => ({ request: { project: 'b', deltas: { servers: delta } }, local: [2n], subtree: [2n, 5n], generations: [2n, 7n] });
const claimOf = (project, generation) => [{ project, generation }, { project: 'org', generation: 7n }];

let counting = null;
afterEach(() => {
  if (counting) Instance.prototype.call = counting;
  counting = null;
});

test('members are decided in arrival order, each against the admissions before it', () => {
  const prepared = new d.Prepared(SIBLINGS, ORG_OF_8);
  assert.deepEqual(prepared.evaluateBatch([A(2n), B(2n), B(1n)]), [
    { status: 'fulfilled', value: { admitted: true, claim: claimOf('a', 4n) } },
    // org: 5 read + a's 2 admitted before it = 7; 7 + 2 > 8.
    {
      status: 'fulfilled',
      value: { admitted: false, violations: [{ project: 'org', resource: 'servers', limit: 8n, usage: 7n, delta: 2n }] },
    },
    // The refused member added nothing: 7 + 1 fits.
    { status: 'fulfilled', value: { admitted: true, claim: claimOf('b', 2n) } },
  ]);
  // The other order: b's 2 first, then a's 2 is the one that no longer fits.
  const [b, a] = prepared.evaluateBatch([B(2n), A(2n)]);
  assert.deepEqual(b, { status: 'fulfilled', value: { admitted: true, claim: claimOf('b', 2n) } });
  assert.deepEqual(a.value.violations, [{ project: 'org', resource: 'servers', limit: 8n, usage: 7n, delta: 2n }]);
  // Each member alone, as Prepared.evaluate decides it, is admitted.
  assert.equal(prepared.evaluate(A(2n).request, A(2n)).admitted, true);
  assert.equal(prepared.evaluate(B(2n).request, B(2n)).admitted, true);
  assert.deepEqual(prepared.evaluateBatch([]), []);
});

test("a member's error is its own: the others are decided as if it were not there", () => {
  const prepared = new d.Prepared(SIBLINGS, ORG_OF_8);
  // a's subtree is one number short (path a, org: 2 numbers for 1 delta).
  const bad = { ...A(2n), subtree: [3n] };
  const outcomes = prepared.evaluateBatch([bad, B(3n), A(1n)]);
  assert.equal(outcomes.length, 3);
  const [first, ...rest] = outcomes;
  assert.equal(first.status, 'rejected');
  assert.ok(first.reason instanceof d.InvalidInput);
  assert.equal(first.reason.kind, 'shape-mismatch');
  assert.deepEqual(
    { field: first.reason.field, expected: first.reason.expected, actual: first.reason.actual },
    { field: 'subtree', expected: 2n, actual: 1n },
  );
  // Prepared.evaluate throws the same error for that member alone.
  assert.throws(() => prepared.evaluate(bad.request, bad), { kind: 'shape-mismatch', message: first.reason.message });
  // b's 3 was admitted (5 + 3 = 8), so a's 1 is refused at org: the bad
  // member's 2 was never added.
  assert.deepEqual(rest, prepared.evaluateBatch([B(3n), A(1n)]));
  assert.deepEqual(rest[0], { status: 'fulfilled', value: { admitted: true, claim: claimOf('b', 2n) } });
  assert.deepEqual(rest[1].value.violations, [{ project: 'org', resource: 'servers', limit: 8n, usage: 8n, delta: 1n }]);
  // An unknown project and an empty resource name: their members' errors only.
  const [unknown, empty, fine] = prepared.evaluateBatch([
    { request: { project: 'zz', deltas: { servers: 1n } }, local: [0n], subtree: [0n], generations: [1n] },
    { request: { project: 'a', deltas: [{ resource: '', delta: 1n }] }, local: [3n], subtree: [3n, 5n], generations: [4n, 7n] },
    A(3n),
  ]);
  assert.deepEqual([unknown.reason.kind, unknown.reason.project], ['unknown-project', 'zz']);
  assert.equal(empty.reason.kind, 'empty-id');
  assert.deepEqual(fine, { status: 'fulfilled', value: { admitted: true, claim: claimOf('a', 4n) } });
});

// ---- equality with evaluateBatch on numbers counted from a snapshot ---------

const TREE = [
  { id: 'org' },
  { id: 'dept', parent: 'org' },
  { id: 'team', parent: 'dept' },
  { id: 'lab', parent: 'dept' },
  { id: 'ops', parent: 'org' },
];
const LIMITS = {
  registered: [
    { resource: 'servers', limit: 10n },
    { resource: 'cores', limit: 40n },
    { resource: 'ram', limit: -1n },
  ],
  project: [
    { project: 'org', resource: 'servers', limit: 14n },
    { project: 'dept', resource: 'servers', limit: 8n },
    { project: 'team', resource: 'cores', limit: 12n },
    { project: 'ops', resource: 'servers', limit: 3n },
  ],
};
const NEAR_MAX = 2n ** 63n - 10n;
/** Local usage: project -> resource -> usage. */
const USAGE = {
  org: { servers: 1n },
  dept: { servers: 1n, cores: 4n },
  team: { servers: 2n, cores: 9n, ram: NEAR_MAX },
  lab: { servers: 2n, cores: 1n },
  ops: { servers: 2n },
};
const GENERATIONS = new Map(TREE.map((p, i) => [p.id, BigInt(100 + 7 * i)]));

const SNAPSHOT = {
  projects: TREE,
  limits: LIMITS,
  usage: Object.entries(USAGE).flatMap(([project, rows]) =>
    Object.entries(rows).map(([resource, usage]) => ({ project, resource, usage })),
  ),
  generations: [...GENERATIONS].map(([project, generation]) => ({ project, generation })),
};

const localOf = (project, resource) => USAGE[project]?.[resource] ?? 0n;
/** The project and every project under it. */
const subtreeOf = (project) => [project, ...TREE.filter((p) => p.parent === project).flatMap((p) => subtreeOf(p.id))];
const subtreeUsage = (project, resource) => subtreeOf(project).reduce((sum, p) => sum + localOf(p, resource), 0n);

/** A member with the numbers of its path, counted from SNAPSHOT (dummy ones for an unknown project). */
function member(prepared, request) {
  const names = Array.isArray(request.deltas) ? request.deltas.map((x) => x.resource) : Object.keys(request.deltas);
  let path;
  try {
    path = prepared.path(request.project);
  } catch (e) {
    if (!(e instanceof d.InvalidInput)) throw e;
    path = [request.project];
  }
  return {
    request,
    local: names.map((resource) => localOf(request.project, resource)),
    subtree: path.flatMap((project) => names.map((resource) => subtreeUsage(project, resource))),
    generations: path.map((project) => GENERATIONS.get(project) ?? 0n),
  };
}

/** Outcomes compared with their errors as plain data. */
const plain = (outcomes) =>
  outcomes.map((o) =>
    o.status === 'fulfilled'
      ? o
      : { status: o.status, error: o.reason.constructor.name, kind: o.reason.kind, message: o.reason.message, fields: o.reason.fields },
  );

test("on numbers counted from a snapshot, the outcomes are the enforcer's evaluateBatch on it", () => {
  const r = (project, deltas) => ({ project, deltas });
  const batches = [
    // Siblings and cousins sharing dept's and org's room, in arrival order.
    [r('team', { servers: 2n }), r('lab', { servers: 2n }), r('dept', { servers: 1n }), r('team', { servers: 1n }), r('ops', { servers: 1n }), r('org', { servers: 4n })],
    // Several resources at once, a release making room, releases below zero.
    [r('team', { servers: 1n, cores: 3n }), r('team', { cores: 1n }), r('lab', { servers: -2n }), r('team', { servers: 2n, cores: -12n }), r('lab', { servers: -1n, cores: 2n })],
    // Errors in evaluate's order, each the member's own, between decisions.
    [r('', { servers: 1n }), r('team', [{ resource: 'cores', delta: 1n }, { resource: 'cores', delta: 1n }]), r('nobody', { servers: 1n }), r('ops', { servers: 1n }), r('team', { servers: 4n })],
    // A resource no limit mentions (the missing-limit rule), and an overflow
    // an earlier admission causes on an unlimited resource.
    [r('lab', { gpus: 1n }), r('team', { ram: 5n }), r('team', { ram: 5n }), r('lab', { ram: 1n }), r('dept', { ram: 1n })],
  ];
  let compared = 0;
  const seen = new Set();
  for (const config of [{ model: 'nested' }, { model: 'flat' }, { model: 'nested', missingLimit: 'unlimited' }]) {
    const prepared = new d.Prepared(TREE, LIMITS, config);
    const enforcer = new d.Enforcer();
    for (const requests of batches) {
      const want = enforcer.evaluateBatch(SNAPSHOT, requests, config);
      const got = prepared.evaluateBatch(requests.map((request) => member(prepared, request)));
      assert.deepEqual(plain(got), plain(want), `${config.model}/${config.missingLimit ?? 'zero'}: ${requests.map((q) => q.project)}`);
      compared += got.length;
      for (const o of got) seen.add(o.status === 'rejected' ? o.reason.kind : o.value.admitted ? 'admitted' : 'refused');
    }
  }
  assert.equal(compared, 3 * 21);
  // The batches exercise admissions, refusals and every kind of member error alike.
  assert.deepEqual(
    [...seen].sort(),
    ['admitted', 'duplicate-resource', 'empty-id', 'overflow', 'refused', 'release-below-zero', 'unknown-project'],
  );
});

// ---- types, faults -----------------------------------------------------------

test('a value of the wrong type is a TypeError (or RangeError) naming it, and nothing crosses', () => {
  const prepared = new d.Prepared(SIBLINGS, ORG_OF_8);
  let calls = 0;
  counting = Instance.prototype.call;
  const call = counting;
  Instance.prototype.call = function counted(...args) {
    calls++;
    return call.apply(this, args);
  };
  assert.throws(() => prepared.evaluateBatch(A(1n)), { name: 'TypeError', message: 'members: expected an array, got an object' });
  assert.throws(() => prepared.evaluateBatch(undefined), TypeError);
  assert.throws(() => prepared.evaluateBatch([A(1n), null]), { name: 'TypeError', message: /^members\[1\]: expected an object/ });
  assert.throws(() => prepared.evaluateBatch([{ ...A(1n), request: { project: 7 } }]), {
    name: 'TypeError',
    message: /^members\[0\]\.request\.project: expected a string/,
  });
  assert.throws(() => prepared.evaluateBatch([A(1n), { ...B(1n), local: [1.5] }]), {
    name: 'TypeError',
    message: /^members\[1\]\.local\[0\]: expected a BigInt/,
  });
  assert.throws(() => prepared.evaluateBatch([{ ...A(1n), subtree: new BigUint64Array(2) }]), {
    name: 'TypeError',
    message: /^members\[0\]\.subtree: expected an array or a BigInt64Array/,
  });
  assert.throws(() => prepared.evaluateBatch([{ ...A(1n), generations: [4n, -1n] }]), {
    name: 'RangeError',
    message: /^members\[0\]\.generations\[1\]: -1 is out of range/,
  });
  assert.throws(() => prepared.evaluateBatch([A('2')]), { name: 'TypeError', message: /^members\[0\]\.request\.deltas\.servers: expected a BigInt/ });
  assert.equal(calls, 0);
  assert.equal(prepared.live, true);
  // Safe-integer Numbers and typed arrays are taken as evaluate takes them.
  const [one] = prepared.evaluateBatch([
    { request: { project: 'a', deltas: [{ resource: 'servers', delta: 2 }] }, local: new BigInt64Array([3n]), subtree: [3, 5], generations: new BigUint64Array([4n, 7n]) },
  ]);
  assert.deepEqual(one, { status: 'fulfilled', value: { admitted: true, claim: claimOf('a', 4n) } });
  assert.equal(calls, 1);
});

test('a guest fault is thrown and the next batch prepares afresh', () => {
  const prepared = new d.Prepared(SIBLINGS, ORG_OF_8, undefined, { memoryLimit: 2 << 20 });
  // 16 MiB of numbers cannot be copied into a 2 MiB instance.
  assert.throws(
    () => prepared.evaluateBatch([A(1n), { ...B(1n), local: new BigInt64Array(2 << 20) }]),
    (e) => e instanceof d.GuestFault && e.kind === 'memory-limit',
  );
  assert.equal(prepared.live, false);
  assert.deepEqual(prepared.evaluateBatch([A(2n)]), [{ status: 'fulfilled', value: { admitted: true, claim: claimOf('a', 4n) } }]);
  assert.equal(prepared.live, true);
});
