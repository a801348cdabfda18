// The caller's store as `consume` drives it through the component's
// `store` imports (conformance/HOSTS.md, section 4). The imports are
// synchronous (jco maps them to plain functions), so a store is too: an
// object with read(project, resources), commit(claim, request) and,
// optionally, backoff(attempt, delayUs).
//
// Nothing a store throws crosses into the guest: a StorageError becomes the
// import's error string (the error itself is kept, for consume's
// StorageError to carry), and anything else is kept to be rethrown as is
// once the guest has stopped (it is told of a storage failure, so it stops
// at once and commits nothing).

import * as convert from './convert.js';
import { StorageError } from './errors.js';
import { storeFailure } from './runtime.js';

/** Blocks the thread for `delayUs` microseconds: the default backoff. */
function sleep(delayUs) {
  const ms = Number(delayUs) / 1000;
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export class StoreBridge {
  /** The last StorageError the store threw. */
  kept = null;
  /** Whether the store threw something else, and what. */
  raised = false;
  error = undefined;

  constructor(store) {
    if (store === null || (typeof store !== 'object' && typeof store !== 'function')) {
      throw new TypeError('consume: the store must be an object with read and commit');
    }
    for (const method of ['read', 'commit']) {
      if (typeof store[method] !== 'function') throw new TypeError(`consume: the store has no ${method} method`);
    }
    if (store.backoff !== undefined && typeof store.backoff !== 'function') {
      throw new TypeError('consume: the store\'s backoff is not a function');
    }
    this.store = store;
  }

  read(project, resources) {
    return this.#forward(() => convert.snapshot(this.#sync(this.store.read(project, resources), 'read'), 'store.read()'));
  }

  commit(claim, request) {
    return this.#forward(() => convert.commitOutcome(this.#sync(this.store.commit(claim, request), 'commit')));
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

  #forward(call) {
    if (this.raised) throw storeFailure('the store raised an exception; stopping');
    try {
      return call();
    } catch (e) {
      if (e instanceof StorageError) {
        this.kept = e;
        throw storeFailure(e.message);
      }
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
      throw new TypeError(`store.${method} returned a promise: consume's store must be synchronous`);
    }
    return value;
  }
}
