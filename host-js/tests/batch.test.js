// evaluateBatch and consumeBatch beyond the vectors, and what the retry
// policy does with the store's clock and entropy: a JavaScript store with
// batch methods, outcomes as Promise.allSettled's with the QuotaError
// family as reasons, a store without batch methods, a member whose rows
// fail, the store's own exceptions, and jitter drawn afresh per call.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as d from '../src/index.js';
import { StoreBridge } from '../src/store.js';

const PROJECTS = [{ id: 'org' }, { id: 'a', parent: 'org' }, { id: 'b', parent: 'org' }];
const LIMITS = {
  registered: [{ resource: 'servers', limit: -1n }],
  project: [{ project: 'org', resource: 'servers', limit: 10n }],
};

/**
 * A store in memory: local usage and a generation per project, commits
 * compared and bumped all or nothing. Serves consume and consumeBatch, and
 * records every call. `fail(members)` may name a member whose rows fail.
 */
class MemoryStore {
  calls = [];

  constructor({ usage = {}, fail = () => null } = {}) {
    this.usage = new Map(Object.entries(usage).map(([p, u]) => [p, BigInt(u)]));
    this.generations = new Map(PROJECTS.map((p, i) => [p.id, BigInt(10 + i)]));
    this.fail = fail;
  }

  snapshot() {
    return {
      projects: PROJECTS,
      limits: LIMITS,
      usage: [...this.usage].map(([project, usage]) => ({ project, resource: 'servers', usage })),
      generations: [...this.generations].map(([project, generation]) => ({ project, generation })),
    };
  }

  #claimHolds(claim) {
    return claim.every((c) => this.generations.get(c.project) === c.generation);
  }

  #apply(claim, requests) {
    for (const c of claim) this.generations.set(c.project, c.generation + 1n);
    for (const r of requests) {
      for (const x of r.deltas) this.usage.set(r.project, (this.usage.get(r.project) ?? 0n) + x.delta);
    }
  }

  read(project, resources) {
    this.calls.push(['read', project, resources]);
    return this.snapshot();
  }

  commit(claim, request) {
    this.calls.push(['commit', claim, request.project]);
    if (!this.#claimHolds(claim)) return 'conflict';
    this.#apply(claim, [request]);
    return 'committed';
  }

  readBatch(projects, resources) {
    this.calls.push(['readBatch', projects, resources]);
    return this.snapshot();
  }

  commitBatch(claim, members) {
    this.calls.push(['commitBatch', claim, members.map((m) => m.project)]);
    if (!this.#claimHolds(claim)) return 'conflict';
    const failed = this.fail(members);
    if (failed !== null) return failed;
    this.#apply(claim, members);
    return 'committed';
  }
}

const req = (project, delta) => ({ project, deltas: { servers: BigInt(delta) } });
const values = (outcomes) => outcomes.map((o) => (o.status === 'fulfilled' ? o.value : o.reason));

test('evaluateBatch decides in arrival order, each against the admissions before it', () => {
  const snapshot = new MemoryStore({ usage: { a: 2, b: 3 } }).snapshot();
  const outcomes = d.evaluateBatch(snapshot, [req('a', 3), req('b', 2), req('a', 1)]);
  // A refusal is a decision: fulfilled, as evaluate returns it.
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', 'fulfilled', 'fulfilled'],
  );
  const [first, second, third] = outcomes.map((o) => o.value);
  assert.deepEqual(first, {
    admitted: true,
    claim: [
      { project: 'a', generation: 11n },
      { project: 'org', generation: 10n },
    ],
  });
  assert.equal(second.admitted, true);
  // 2 + 3 + 3 + 2 = 10 at org: the third does not fit, though alone it would.
  assert.deepEqual(third, {
    admitted: false,
    violations: [{ project: 'org', resource: 'servers', limit: 10n, usage: 10n, delta: 1n }],
  });
  assert.equal(d.evaluate(snapshot, req('a', 1)).admitted, true);
});

test('evaluateBatch: a member\'s input error is its InvalidInput; a config error is every member\'s', () => {
  const snapshot = new MemoryStore().snapshot();
  const [bad, good] = d.evaluateBatch(snapshot, [req('nobody', 1), req('a', 1)]);
  assert.equal(bad.status, 'rejected');
  assert.ok(bad.reason instanceof d.InvalidInput);
  assert.equal(bad.reason.kind, 'unknown-project');
  assert.equal(bad.reason.project, 'nobody');
  assert.equal(good.status, 'fulfilled');

  const outcomes = d.evaluateBatch(snapshot, [req('a', 1), req('b', 1)], { model: 'hierarchical' });
  assert.deepEqual(
    outcomes.map((o) => [o.status, o.reason?.kind, o.reason?.model]),
    [
      ['rejected', 'unknown-model', 'hierarchical'],
      ['rejected', 'unknown-model', 'hierarchical'],
    ],
  );
  const deep = d.evaluateBatch(snapshot, [req('a', 1)], { maxDepth: 0 });
  assert.equal(deep[0].reason.kind, 'invalid-config');
  assert.equal(deep[0].reason.field, 'max-depth');

  assert.deepEqual(d.evaluateBatch(snapshot, []), []);
  assert.throws(() => d.evaluateBatch(snapshot, req('a', 1)), /requests: expected an array/);
  assert.throws(() => d.evaluateBatch(snapshot, [req('a', 1), { project: 7 }]), /requests\[1\]\.project/);
});

test('consumeBatch reads once, commits the union of the claims once, and writes every admitted member', () => {
  const store = new MemoryStore({ usage: { a: 2, b: 3 } });
  const outcomes = d.consumeBatch(store, [req('b', 1), req('a', 3), req('b', 1)]);
  assert.deepEqual(values(outcomes), [
    { claim: [{ project: 'b', generation: 12n }, { project: 'org', generation: 10n }], attempts: 1 },
    { claim: [{ project: 'a', generation: 11n }, { project: 'org', generation: 10n }], attempts: 1 },
    { claim: [{ project: 'b', generation: 12n }, { project: 'org', generation: 10n }], attempts: 1 },
  ]);
  assert.deepEqual(store.calls, [
    ['readBatch', ['b', 'a'], ['servers']],
    [
      'commitBatch',
      [
        { project: 'org', generation: 10n },
        { project: 'a', generation: 11n },
        { project: 'b', generation: 12n },
      ],
      ['b', 'a', 'b'],
    ],
  ]);
  assert.deepEqual(Object.fromEntries(store.usage), { a: 5n, b: 5n });
  assert.deepEqual(Object.fromEntries(store.generations), { org: 11n, a: 12n, b: 13n });
});

test('consumeBatch gives each member what consume one by one would, errors as consume throws them', () => {
  const requests = [req('a', 4), req('b', 3), req('a', 1), req('nobody', 1), { project: 'b', deltas: { servers: -9n } }];
  const batched = new MemoryStore({ usage: { a: 2, b: 3 } });
  const alone = new MemoryStore({ usage: { a: 2, b: 3 } });
  const outcomes = d.consumeBatch(batched, requests);
  const one = requests.map((r) => {
    try {
      return d.consume(alone, r);
    } catch (e) {
      return e;
    }
  });
  const shape = (x) => (x instanceof d.QuotaError ? [x.constructor.name, x.kind, x.message] : x.claim.length);
  assert.deepEqual(values(outcomes).map(shape), one.map(shape));
  assert.deepEqual(batched.usage, alone.usage);

  const [, over, , unknown, below] = values(outcomes);
  assert.ok(over instanceof d.OverLimit);
  assert.equal(over.attempts, 1);
  assert.deepEqual(over.violations, [{ project: 'org', resource: 'servers', limit: 10n, usage: 9n, delta: 3n }]);
  assert.ok(unknown instanceof d.InvalidInput && unknown.project === 'nobody');
  assert.ok(below instanceof d.InvalidInput && below.kind === 'release-below-zero');
});

test('a member whose rows fail gets the store\'s StorageError (its cause kept); the others commit without it', () => {
  const duplicate = new Error('UNIQUE constraint failed');
  const store = new MemoryStore({
    fail: (members) =>
      members.length > 1 ? { memberFailed: 0, error: new d.StorageError('duplicate row', { cause: duplicate }) } : null,
  });
  const [failed, done] = values(d.consumeBatch(store, [req('a', 1), req('b', 1)]));
  assert.ok(failed instanceof d.StorageError);
  assert.equal(failed.message, 'duplicate row');
  assert.equal(failed.attempts, 1);
  assert.equal(failed.cause, duplicate);
  assert.equal(done.attempts, 1);
  assert.deepEqual(
    store.calls.filter((c) => c[0] === 'commitBatch').map((c) => c[2]),
    [['a', 'b'], ['b']],
  );
  assert.deepEqual(Object.fromEntries(store.usage), { b: 1n });

  // A message alone is a StorageError without a cause.
  const plain = new MemoryStore({ fail: () => ({ memberFailed: 0, error: 'no room on disk' }) });
  const [only] = values(d.consumeBatch(plain, [req('a', 1)]));
  assert.ok(only instanceof d.StorageError && only.message === 'no room on disk' && only.cause === undefined);
});

test('a StorageError from readBatch or commitBatch is every member\'s, with the storage\'s own error as cause', () => {
  const reset = new Error('ECONNRESET');
  const store = new MemoryStore();
  store.readBatch = () => {
    throw new d.StorageError('connection lost', { cause: reset });
  };
  const outcomes = d.consumeBatch(store, [req('a', 1), req('b', 99)]);
  for (const o of outcomes) {
    assert.equal(o.status, 'rejected');
    assert.ok(o.reason instanceof d.StorageError);
    assert.equal(o.reason.cause, reset);
    assert.equal(o.reason.attempts, 1);
  }
});

test('anything else a batch store throws is rethrown as is, nothing committed', () => {
  const boom = new RangeError('a bug in the store');
  const store = new MemoryStore();
  store.commitBatch = () => {
    throw boom;
  };
  assert.throws(() => d.consumeBatch(store, [req('a', 1)]), (e) => e === boom);
  assert.deepEqual(store.generations.get('a'), 11n);

  const wrong = new MemoryStore();
  wrong.commitBatch = () => ({ memberFailed: 0, error: 42 });
  assert.throws(() => d.consumeBatch(wrong, [req('a', 1)]), /expected a StorageError or a message/);
  const promised = new MemoryStore();
  promised.readBatch = async () => promised.snapshot();
  assert.throws(() => d.consumeBatch(promised, [req('a', 1)]), /readBatch returned a promise/);
});

test('a store without readBatch and commitBatch is a TypeError saying so, before any call', () => {
  const calls = [];
  const lone = {
    read: () => calls.push('read'),
    commit: () => calls.push('commit'),
  };
  assert.throws(
    () => d.consumeBatch(lone, [req('a', 1)]),
    (e) =>
      e instanceof TypeError &&
      e.message === 'consumeBatch: the store has no readBatch method (consumeBatch needs readBatch and commitBatch)',
  );
  assert.throws(() => d.consumeBatch({ readBatch: () => ({}) }, [req('a', 1)]), /no commitBatch method/);
  assert.throws(() => d.consumeBatch(null, [req('a', 1)]), /the store must be an object with readBatch and commitBatch/);
  assert.deepEqual(calls, []);
  // A batch store is not a consume store, and the other way round.
  assert.throws(() => d.consume({ readBatch() {}, commitBatch() {} }, req('a', 1)), /no read method/);

  // Were the component to ask a consume's store for a batch, it would get a storage error, not a crash.
  const bridge = new StoreBridge(lone, 'consume');
  assert.throws(() => bridge.readBatch(['a'], ['servers']), (e) => /this store has no readBatch method/.test(e.payload));
  assert.throws(() => bridge.commitBatch([], []), (e) => /this store has no commitBatch method/.test(e.payload));
});

test('an empty batch reads nothing; an invalid policy is every member\'s invalid-config, before any call', () => {
  const store = new MemoryStore();
  assert.deepEqual(d.consumeBatch(store, []), []);
  const outcomes = d.consumeBatch(store, [req('a', 1), req('b', 1)], undefined, { maxAttempts: 0 });
  assert.deepEqual(
    outcomes.map((o) => [o.reason.kind, o.reason.field]),
    [
      ['invalid-config', 'max-attempts'],
      ['invalid-config', 'max-attempts'],
    ],
  );
  assert.deepEqual(store.calls, []);
});

// ---- the retry policy: clock, entropy, jitter ------------------------------------

/** A store that conflicts `conflicts` times, then commits, recording each backoff's delay (without waiting). */
function conflicting(conflicts, extra = {}) {
  const snapshot = new MemoryStore().snapshot();
  let lost = 0;
  const lose = () => (lost++ < conflicts ? 'conflict' : 'committed');
  return {
    delays: [],
    read: () => snapshot,
    readBatch: () => snapshot,
    commit: lose,
    commitBatch: lose,
    backoff(_attempt, delayUs) {
      this.delays.push(delayUs);
    },
    ...extra,
  };
}

test('the default policy: 100 attempts, a 2 s deadline, backoffs from 1 ms to 50 ms, no seed, no locked attempts', () => {
  assert.deepEqual(d.DEFAULT_POLICY, {
    maxAttempts: 100,
    deadlineUs: 2_000_000n,
    baseDelayUs: 1000n,
    maxDelayUs: 50_000n,
    seed: null,
    lockAfterConflict: false,
  });
  // lockAfterConflict is a boolean, checked before any store call.
  assert.throws(() => d.consume(conflicting(0), req('a', 1), undefined, { lockAfterConflict: 1 }), TypeError);
  // Past the old cap of 5 attempts.
  const store = conflicting(9);
  assert.equal(d.consume(store, req('a', 1)).attempts, 10);
  assert.equal(store.delays.length, 9);
  store.delays.forEach((delay, i) => {
    const cap = [1000n, 2000n, 4000n, 8000n, 16000n, 32000n, 50000n, 50000n, 50000n][i];
    assert.ok(delay >= cap / 2n && delay <= cap, `backoff ${i + 1}: ${delay} in [${cap / 2n}, ${cap}]`);
  });
});

test('with the default policy two calls draw different jitter (fresh entropy per call)', () => {
  for (const run of [(s) => d.consume(s, req('a', 1)), (s) => d.consumeBatch(s, [req('a', 1)])]) {
    const first = conflicting(6);
    const second = conflicting(6);
    run(first);
    run(second);
    assert.equal(first.delays.length, 6);
    assert.equal(second.delays.length, 6);
    // Six delays drawn from spans of 501 to 16001 values each: equal only by a 1 in 10^20 chance.
    assert.notDeepEqual(first.delays, second.delays);
  }
});

test('a seed makes the jitter the seed\'s (callers back off in lockstep); without one the store\'s entropy is asked once per call', () => {
  let asked = 0;
  const entropy = () => {
    asked++;
    return 12345n;
  };
  const seeded = [conflicting(3, { entropy }), conflicting(3, { entropy })];
  for (const s of seeded) d.consume(s, req('a', 1), undefined, { seed: 7n });
  assert.deepEqual(seeded[0].delays, seeded[1].delays);
  assert.equal(asked, 0);

  const drawn = [conflicting(3, { entropy }), conflicting(3, { entropy })];
  d.consume(drawn[0], req('a', 1));
  d.consumeBatch(drawn[1], [req('a', 1)]);
  assert.equal(asked, 2);
  assert.deepEqual(drawn[0].delays, drawn[1].delays);
  // The vectors' case: entropy 12345 sleeps 2310 µs over two backoffs.
  assert.equal(drawn[0].delays.slice(0, 2).reduce((a, b) => a + b), 2310n);
  // A safe-integer Number is taken too.
  const numbered = conflicting(3, { entropy: () => 12345 });
  d.consume(numbered, req('a', 1));
  assert.deepEqual(numbered.delays, drawn[0].delays);
});

test('the deadline is measured on the store\'s nowUs: a slow store runs out of time, not attempts', () => {
  let now = 0n;
  const store = conflicting(Infinity, {
    nowUs: () => now,
    read() {
      now += 700_000n; // each read takes 0.7 s
      return new MemoryStore().snapshot();
    },
  });
  assert.throws(() => d.consume(store, req('a', 1)), (e) => e instanceof d.RetriesExhausted && e.attempts === 3);

  now = 0n;
  const outcomes = d.consumeBatch({ ...store, readBatch: store.read }, [req('a', 1), req('b', 1)], undefined, {
    deadlineUs: 1_000_000n,
  });
  assert.deepEqual(
    outcomes.map((o) => [o.reason.kind, o.reason.attempts]),
    [
      ['retries-exhausted', 2],
      ['retries-exhausted', 2],
    ],
  );
});

test('a conflict after a wait re-reads at once, without a backoff', () => {
  const outcomes = ['conflict-after-wait', 'conflict-after-wait', 'committed'];
  let n = 0;
  const store = conflicting(0, { commit: () => outcomes[n++], commitBatch: () => outcomes[n++ - 3] });
  assert.equal(d.consume(store, req('a', 1)).attempts, 3);
  assert.deepEqual(values(d.consumeBatch(store, [req('a', 1)])).map((v) => v.attempts), [3]);
  assert.deepEqual(store.delays, []);
});

test('nowUs and entropy cannot fail: what they throw, or a value that is not a u64, is rethrown as is', () => {
  const boom = new Error('clock broke');
  const broken = conflicting(0, {
    nowUs() {
      throw boom;
    },
  });
  assert.throws(() => d.consume(broken, req('a', 1)), (e) => e === boom);
  assert.throws(() => d.consumeBatch(broken, [req('a', 1)]), (e) => e === boom);
  assert.throws(() => d.consume(conflicting(1, { entropy: () => -1n }), req('a', 1)), RangeError);
  assert.throws(() => d.consume(conflicting(1, { entropy: () => 'random' }), req('a', 1)), /store\.entropy\(\)/);
  // A seeded call never asks for entropy.
  assert.equal(d.consume(conflicting(1, { entropy: () => 'random' }), req('a', 1), undefined, { seed: 1n }).attempts, 2);
  assert.throws(() => d.consume(conflicting(0, { nowUs: 5 }), req('a', 1)), /nowUs is not a function/);
});

test('the policy\'s fields are checked by the component, the field named; types by the host', () => {
  const store = conflicting(0);
  for (const [policy, field] of [
    [{ maxAttempts: 0 }, 'max-attempts'],
    [{ deadlineUs: 0n, baseDelayUs: 0n, maxDelayUs: 0n }, 'deadline-us'],
    [{ baseDelayUs: 2000n, maxDelayUs: 1000n }, 'base-delay-us'],
    [{ deadlineUs: 1000n }, 'max-delay-us'],
  ]) {
    assert.throws(
      () => d.consume(store, req('a', 1), undefined, policy),
      (e) => e instanceof d.InvalidInput && e.kind === 'invalid-config' && e.field === field,
    );
  }
  assert.throws(() => d.consume(store, req('a', 1), undefined, { deadlineUs: 2n ** 64n }), /policy\.deadlineUs/);
  assert.throws(() => d.consume(store, req('a', 1), undefined, { seed: 'x' }), /policy\.seed/);
});
