// consume drives the caller's store (conformance/HOSTS.md, section 4):
// what the store sees, each outcome that did not commit as its error, the
// storage's own error as the cause, a store's other exceptions rethrown as
// they are with nothing committed, and a call made from inside a store
// callback running in another instance.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as d from '../src/index.js';

const SNAPSHOT = {
  projects: [{ id: 'org' }, { id: 'web', parent: 'org' }],
  limits: { registered: [{ resource: 'servers', limit: 5n }] },
  usage: [{ project: 'web', resource: 'servers', usage: 4n }],
  generations: [
    { project: 'web', generation: 3n },
    { project: 'org', generation: 9n },
  ],
};
const ONE = { project: 'web', deltas: { servers: 1n } };

/** A store answering `commits` in turn (the last one again), recording every call. */
function scripted(commits = ['committed'], overrides = {}) {
  const calls = [];
  return {
    calls,
    read(project, resources) {
      calls.push(['read', project, resources]);
      return SNAPSHOT;
    },
    commit(claim, request) {
      calls.push(['commit', claim, request]);
      return commits[Math.min(calls.filter((c) => c[0] === 'commit').length, commits.length) - 1];
    },
    backoff(attempt, delayUs) {
      calls.push(['backoff', attempt, delayUs]);
    },
    ...overrides,
  };
}

test('the store reads the project\'s path and commits the claim with the request', () => {
  const store = scripted();
  const claim = [
    { project: 'web', generation: 3n },
    { project: 'org', generation: 9n },
  ];
  assert.deepEqual(d.consume(store, ONE), { claim, attempts: 1 });
  assert.deepEqual(store.calls, [
    ['read', 'web', ['servers']],
    ['commit', claim, { project: 'web', deltas: [{ resource: 'servers', delta: 1n }] }],
  ]);
});

test('a conflict backs off (through the store\'s backoff, delays as BigInt) and reads again', () => {
  const store = scripted(['conflict', 'committed']);
  assert.equal(d.consume(store, ONE).attempts, 2);
  assert.deepEqual(
    store.calls.map((c) => c[0]),
    ['read', 'commit', 'backoff', 'read', 'commit'],
  );
  const [, attempt, delayUs] = store.calls[2];
  assert.equal(attempt, 1);
  assert.equal(typeof delayUs, 'bigint');
  assert.ok(delayUs <= 1000n, `the first delay is capped by baseDelayUs (${delayUs})`);
});

test('without a backoff method the default one waits, and the retry goes through', () => {
  const store = scripted(['conflict', 'committed'], { backoff: undefined });
  assert.equal(d.consume(store, ONE, undefined, { baseDelayUs: 500n }).attempts, 2);
});

test('every attempt lost to a conflict is RetriesExhausted', () => {
  const store = scripted(['conflict']);
  assert.throws(() => d.consume(store, ONE, undefined, { maxAttempts: 3 }), (e) => {
    assert.ok(e instanceof d.RetriesExhausted);
    assert.equal(e.kind, 'retries-exhausted');
    assert.equal(e.attempts, 3);
    return true;
  });
  assert.equal(store.calls.filter((c) => c[0] === 'backoff').length, 2);
});

test('a refusal is OverLimit, with the violations and the attempt, and nothing committed', () => {
  const store = scripted();
  assert.throws(() => d.consume(store, { project: 'web', deltas: { servers: 2n } }), (e) => {
    assert.ok(e instanceof d.OverLimit);
    assert.equal(e.attempts, 1);
    // The registered limit is every project's, org's included.
    assert.deepEqual(e.violations, [
      { project: 'web', resource: 'servers', limit: 5n, usage: 4n, delta: 2n },
      { project: 'org', resource: 'servers', limit: 5n, usage: 4n, delta: 2n },
    ]);
    return true;
  });
  assert.deepEqual(store.calls.map((c) => c[0]), ['read']);
});

test('an input error in what the store read is InvalidInput', () => {
  const store = scripted(['committed'], { read: () => ({ ...SNAPSHOT, projects: [{ id: 'org' }] }) });
  assert.throws(() => d.consume(store, ONE), { name: 'InvalidInput', kind: 'unknown-project', project: 'web' });
});

test('a StorageError carries the attempt and the storage\'s own error as its cause', () => {
  const reset = new Error('ECONNRESET');
  const failing = scripted(['committed'], {
    commit() {
      throw new d.StorageError('connection lost', { cause: reset });
    },
  });
  assert.throws(() => d.consume(failing, ONE), (e) => {
    assert.ok(e instanceof d.StorageError);
    assert.equal(e.message, 'connection lost');
    assert.equal(e.attempts, 1);
    assert.equal(e.cause, reset);
    return true;
  });

  // Without a cause of its own, the cause is the store's StorageError.
  const own = new d.StorageError('no such table');
  const bare = scripted(['committed'], {
    read() {
      throw own;
    },
  });
  assert.throws(() => d.consume(bare, ONE), (e) => e instanceof d.StorageError && e.cause === own && e !== own);
});

test('any other exception from the store is rethrown as is; nothing is committed or called after it', () => {
  const boom = new RangeError('a bug in the store');
  const store = scripted(['conflict', 'committed'], {
    read(project) {
      this.calls.push(['read', project]);
      if (this.calls.length > 1) throw boom;
      return SNAPSHOT;
    },
  });
  assert.throws(() => d.consume(store, ONE), (e) => e === boom);
  assert.deepEqual(store.calls.map((c) => c[0]), ['read', 'commit', 'backoff', 'read']);

  const inBackoff = scripted(['conflict', 'committed'], {
    backoff() {
      throw boom;
    },
  });
  assert.throws(() => d.consume(inBackoff, ONE), (e) => e === boom);
  assert.deepEqual(inBackoff.calls.map((c) => c[0]), ['read', 'commit']);
});

test('a store must be synchronous and answer the WIT\'s shapes: otherwise a TypeError, nothing committed', () => {
  const promised = scripted(['committed'], { read: async () => SNAPSHOT });
  assert.throws(() => d.consume(promised, ONE), /must be synchronous/);
  const wrong = scripted(['committed'], {
    commit() {
      return 'ok';
    },
  });
  assert.throws(() => d.consume(wrong, ONE), TypeError);
  assert.throws(() => d.consume({ read: () => SNAPSHOT }, ONE), /no commit method/);
});

test('a call made from inside a store callback runs in another instance', () => {
  let inner;
  const store = scripted(['committed'], {
    read() {
      // Re-entrant: the shared enforcer is in the middle of this consume.
      inner = d.evaluate(SNAPSHOT, ONE);
      return SNAPSHOT;
    },
  });
  assert.equal(d.consume(store, ONE).attempts, 1);
  assert.equal(inner.admitted, true);
  assert.equal(d.evaluate(SNAPSHOT, ONE).admitted, true);
});
