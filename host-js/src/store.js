// The caller's store as `consume` and `consumeBatch` drive it through the
// component's `store` imports (conformance/HOSTS.md, section 4). The
// imports are synchronous (jco maps them to plain functions), so a store
// is too: an object with read(project, resources) and commit(claim,
// request) for consume, readBatch(projects, resources) and
// commitBatch(claim, members) for consumeBatch, and optionally
// backoff(attempt, delayUs), nowUs(), entropy(), and readLocked(project,
// resources) with unlock() for the policy's locked attempts.
//
// Nothing a store throws crosses into the guest: a StorageError becomes the
// import's error string (the error itself is kept, for consume's
// StorageError to carry), and anything else is kept to be rethrown as is
// once the guest has stopped (it is told of a storage failure, so it stops
// at once and commits nothing).

import * as convert from './convert.js';
import { StorageError } from './errors.js';
import { monotonicUs, randomU64, storeFailure } from './runtime.js';

/** Blocks the thread for `delayUs` microseconds: the default backoff. */
function sleep(delayUs) {
  const ms = Number(delayUs) / 1000;
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// The methods each driver calls, and the ones a store may leave out.
const REQUIRED = {
  consume: ['read', 'commit'],
  consumeBatch: ['readBatch', 'commitBatch'],
};
const OPTIONAL = ['read', 'commit', 'readBatch', 'commitBatch', 'backoff', 'nowUs', 'entropy', 'readLocked', 'unlock'];

export class StoreBridge {
  /** Whether the store threw something other than a StorageError, and what. */
  raised = false;
  error = undefined;
  /** The StorageErrors the store reported, by message (the last of each). */
  #kept = new Map();

  /** `driver`: 'consume' or 'consumeBatch', the call the store is given to. */
  constructor(store, driver = 'consume') {
    const needs = REQUIRED[driver];
    if (store === null || (typeof store !== 'object' && typeof store !== 'function')) {
      throw new TypeError(`${driver}: the store must be an object with ${needs.join(' and ')}`);
    }
    for (const method of needs) {
      if (typeof store[method] !== 'function') {
        throw new TypeError(`${driver}: the store has no ${method} method (${driver} needs ${needs.join(' and ')})`);
      }
    }
    for (const method of OPTIONAL) {
      if (store[method] !== undefined && typeof store[method] !== 'function') {
        throw new TypeError(`${driver}: the store's ${method} is not a function`);
      }
    }
    this.store = store;
  }

  /**
   * The store's own StorageError whose message the guest reported, or null:
   * the error consume and consumeBatch throw carries it (or its cause).
   */
  kept(message) {
    return this.#kept.get(message) ?? null;
  }

  read(project, resources) {
    return this.#forward(() => convert.snapshot(this.#sync(this.store.read(project, resources), 'read'), 'store.read()'));
  }

  commit(claim, request) {
    return this.#forward(() => convert.commitOutcome(this.#sync(this.store.commit(claim, request), 'commit')));
  }

  /** A snapshot, or undefined (the WIT's none) when the store takes no locks. */
  readLocked(project, resources) {
    if (typeof this.store.readLocked !== 'function') return undefined;
    return this.#forward(() => {
      const locked = this.#sync(this.store.readLocked(project, resources), 'readLocked');
      return locked === null || locked === undefined ? undefined : convert.snapshot(locked, 'store.readLocked()');
    });
  }

  unlock() {
    if (this.raised || typeof this.store.unlock !== 'function') return;
    try {
      this.#sync(this.store.unlock(), 'unlock');
    } catch (e) {
      // unlock cannot answer an error: consume rethrows it.
      this.#raise(e);
    }
  }

  readBatch(projects, resources) {
    this.#has('readBatch');
    return this.#forward(() =>
      convert.snapshot(this.#sync(this.store.readBatch(projects, resources), 'readBatch'), 'store.readBatch()'),
    );
  }

  commitBatch(claim, members) {
    this.#has('commitBatch');
    return this.#forward(() =>
      convert.batchOutcome(this.#sync(this.store.commitBatch(claim, members), 'commitBatch'), (e) => this.#keep(e)),
    );
  }

  backoff(attempt, delayUs) {
    if (this.raised) return;
    try {
      if (this.store.backoff) this.#sync(this.store.backoff(attempt, delayUs), 'backoff');
      else sleep(delayUs);
    } catch (e) {
      // backoff cannot answer an error: the next read does (see #forward).
      this.#raise(e);
    }
  }

  nowUs() {
    return this.#value('nowUs', monotonicUs);
  }

  entropy() {
    return this.#value('entropy', randomU64);
  }

  /**
   * A u64 from the store's `method`, else from `fallback`. Neither import
   * can answer an error: what the store throws (or a value that is not a
   * u64) stops the call at the next read or commit, as in backoff.
   */
  #value(method, fallback) {
    if (this.raised || !this.store[method]) return fallback();
    try {
      return convert.u64(this.#sync(this.store[method](), method), `store.${method}()`);
    } catch (e) {
      this.#raise(e);
      return fallback();
    }
  }

  /** A batch method the guest calls on a store without it (consume's store) is a storage failure. */
  #has(method) {
    if (typeof this.store[method] !== 'function') {
      throw storeFailure(`store.${method}: this store has no ${method} method`);
    }
  }

  #keep(e) {
    this.#kept.set(e.message, e);
    return e.message;
  }

  #forward(call) {
    if (this.raised) throw storeFailure('the store raised an exception; stopping');
    try {
      return call();
    } catch (e) {
      if (e instanceof StorageError) throw storeFailure(this.#keep(e));
      this.#raise(e);
      throw storeFailure('the store raised an exception; stopping');
    }
  }

  #raise(e) {
    this.raised = true;
    this.error = e;
  }

  #sync(value, method) {
    if (value !== null && typeof value === 'object' && typeof value.then === 'function') {
      // A promise would be lowered as garbage; say what is wrong instead.
      value.then(undefined, () => {}); // its rejection is not the caller's to handle now
      throw new TypeError(`store.${method} returned a promise: the store must be synchronous`);
    }
    return value;
  }
}
