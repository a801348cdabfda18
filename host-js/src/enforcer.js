// Enforcer: every exported function of the component as a method, each
// call run with fuel and a memory cap, and the component's errors turned
// into the QuotaError family. Instances are pooled per enforcer: a call
// takes an idle one (or makes one), so a call made from inside a store
// callback (re-entrant) runs in another instance than the consume that
// called the store; an instance that faulted is never returned.

import * as convert from './convert.js';
import { GuestFault, InvalidInput, OverLimit, RetriesExhausted, StorageError } from './errors.js';
import { DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT, isComponentError, runtime } from './runtime.js';
import { StoreBridge } from './store.js';

/** The component's `invalid` record as the error it stands for. */
export const invalidInput = (invalid) =>
  new InvalidInput(invalid.input.tag, invalid.message, convert.invalidFields(invalid.input));

/**
 * A `consume-error` as the error consume throws for it; a storage failure
 * carries the store's own StorageError (its cause, else itself) when the
 * store reported the message the guest did.
 */
function consumeError({ tag, val }, bridge) {
  switch (tag) {
    case 'over-limit':
      return new OverLimit(val.violations, val.attempts);
    case 'retries-exhausted':
      return new RetriesExhausted(val);
    case 'storage': {
      const own = bridge.kept(val.message);
      const cause = own === null ? undefined : own.cause ?? own;
      return new StorageError(val.message, { attempts: val.attempts, ...(cause === undefined ? {} : { cause }) });
    }
    case 'invalid':
      return invalidInput(val);
    default:
      // Not an outcome of one member: the whole call faulted.
      throw new GuestFault('trap', `the component answered an unknown consume error ${JSON.stringify(tag)}`);
  }
}

/** Runs `fn`; a `result<_, invalid>` error (as jco throws it) is thrown as an InvalidInput. */
export function answer(fn) {
  try {
    return fn();
  } catch (e) {
    throw isComponentError(e) ? invalidInput(e.payload) : e;
  }
}

/**
 * A config in the WIT's shape: as given when its names are the WIT's, else
 * parsed by the component (through `run`, which runs a function of the
 * component's exports), so that a bad name gets the core's error.
 */
export function witConfig(config, run) {
  const { config: c, parsed } = convert.config(config);
  return parsed ? c : answer(() => run((q) => q.parseConfig(c.model, c.maxDepth, c.missingLimit)));
}

export function checkLimits({ fuel = DEFAULT_FUEL, memoryLimit = DEFAULT_MEMORY_LIMIT } = {}) {
  const f = convert.u64(fuel, 'fuel');
  if (!Number.isSafeInteger(memoryLimit) || memoryLimit < 0) {
    throw new TypeError(`memoryLimit: expected a number of bytes, got ${memoryLimit}`);
  }
  return { fuel: f, memoryLimit };
}

export class Enforcer {
  #idle = [];
  #last = null;
  #runtime;
  #fuel;
  #memoryLimit;

  /**
   * `fuel` (BigInt) and `memoryLimit` (bytes) bound every call
   * (defaults DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT).
   */
  constructor(options = {}) {
    ({ fuel: this.#fuel, memoryLimit: this.#memoryLimit } = checkLimits(options));
    // Tests of traps and load faults pass a runtime of altered modules.
    this.#runtime = options.runtime ?? runtime();
  }

  /** Fuel for each call, from the next call on. */
  get fuel() {
    return this.#fuel;
  }

  set fuel(fuel) {
    this.#fuel = checkLimits({ fuel }).fuel;
  }

  /** The linear memory an instance may grow to, in bytes, from the next call on. */
  get memoryLimit() {
    return this.#memoryLimit;
  }

  set memoryLimit(memoryLimit) {
    this.#memoryLimit = checkLimits({ memoryLimit }).memoryLimit;
  }

  /** Fuel the last call used (null before a call, or after a fault). */
  get lastFuelUsed() {
    return this.#last?.lastFuelUsed ?? null;
  }

  /** The largest linear memory the last call's instance has grown to, in bytes. */
  get memoryHighWater() {
    return this.#last?.highWater ?? 0;
  }

  /** Admits or refuses `request` against `snapshot`; an admission carries the claim. */
  evaluate(snapshot, request, config) {
    const s = convert.snapshot(snapshot);
    const r = convert.request(request);
    return convert.decision(this.#call(config, (q, c) => q.evaluate(c, s, r)));
  }

  /** The headroom of `project` for each of `resources`, sorted by resource. */
  headroom(snapshot, project, resources, config) {
    const s = convert.snapshot(snapshot);
    const p = convert.string(project, 'project');
    const names = convert.strings(resources ?? [], 'resources');
    return convert.headroom(this.#call(config, (q, c) => q.headroom(c, s, p, names)));
  }

  /** How many units of `request` (its deltas are per unit) fit now. */
  maxCount(snapshot, request, config) {
    const s = convert.snapshot(snapshot);
    const r = convert.request(request);
    return convert.count(this.#call(config, (q, c) => q.maxCount(c, s, r)));
  }

  /** Every problem of the tree and limits, as findings; empty when valid. */
  validate(projects, limits, config) {
    const p = convert.projects(projects);
    const l = convert.limits(limits);
    return this.#call(config, (q, c) => q.validate(c, p, l)).map(convert.finding);
  }

  /** oslo.limit 2.12's flat check: the over-limit infos, empty when within limits. */
  osloCheck(check) {
    const o = convert.osloRequest(check);
    return answer(() => this.#run((q) => q.osloCheck(o)));
  }

  /** A model by name (`flat`, `strict-two-level` or Keystone's `strict_two_level`, `nested`). */
  parseModel(name) {
    const n = convert.string(name, 'name');
    return answer(() => this.#run((q) => q.parseModel(n)));
  }

  /** A config from names, checked by the component (model, then depth, then missing-limit rule). */
  parseConfig(config) {
    return this.#config(config);
  }

  /**
   * Consumes `request` through `store`: read, decide, commit; on a
   * conflict, re-read at once (after a wait) or back off, and start again
   * from a fresh read, until the policy's deadline or attempt cap. Throws
   * OverLimit, RetriesExhausted or StorageError when nothing was committed,
   * and whatever else the store threw, as is.
   */
  consume(store, request, config, policy) {
    const bridge = new StoreBridge(store, 'consume');
    const r = convert.request(request);
    const p = convert.policy(policy);
    const c = this.#config(config);
    let done;
    let failure;
    try {
      done = this.#run((q) => q.consume(c, p, r), bridge);
    } catch (e) {
      failure = e;
    }
    // The store's own exception wins: the guest only stopped because of it.
    if (bridge.raised) throw bridge.error;
    if (failure === undefined) return done;
    if (!isComponentError(failure)) throw failure;
    throw consumeError(failure.payload, bridge);
  }

  /**
   * Decides `requests` in order against one snapshot, each against the
   * snapshot plus the deltas of the requests admitted before it: what the
   * same requests would get one by one. One outcome per request, in
   * order, as Promise.allSettled gives them: `{ status: 'fulfilled', value:
   * decision }` or `{ status: 'rejected', reason: InvalidInput }` (a
   * config error is every member's). Throws only a TypeError or RangeError
   * for an input of the wrong type, and a GuestFault.
   */
  evaluateBatch(snapshot, requests, config) {
    const s = convert.snapshot(snapshot);
    const rs = convert.requests(requests);
    const c = this.#batchConfig(config, rs);
    if (Array.isArray(c)) return c;
    return this.#run((q) => q.evaluateBatch(c, s, rs)).map((r) =>
      r.tag === 'ok' ? convert.fulfilled(convert.decision(r.val)) : convert.rejected(invalidInput(r.val)),
    );
  }

  /**
   * Consumes `requests` as one batch through `store`'s readBatch and
   * commitBatch: one read, the decisions of evaluateBatch, one commit of
   * the admitted members with the union of their claims (each project
   * once, root first, then by depth, then id); a conflict re-runs the
   * batch within the policy's budget. One outcome per request, in order,
   * as Promise.allSettled gives them: `{ status: 'fulfilled', value: {
   * claim, attempts } }` or `{ status: 'rejected', reason }`, the reason
   * what consume would throw (OverLimit, RetriesExhausted, StorageError,
   * InvalidInput). Throws what the store threw other than a StorageError,
   * as is (nothing committed), a TypeError for a store without readBatch
   * or commitBatch, and a GuestFault.
   */
  consumeBatch(store, requests, config, policy) {
    const bridge = new StoreBridge(store, 'consumeBatch');
    const rs = convert.requests(requests);
    const p = convert.policy(policy);
    const c = this.#batchConfig(config, rs);
    if (Array.isArray(c)) return c;
    let results;
    let failure;
    try {
      results = this.#run((q) => q.consumeBatch(c, p, rs), bridge);
    } catch (e) {
      failure = e;
    }
    if (bridge.raised) throw bridge.error;
    if (failure !== undefined) throw failure;
    return results.map((r) =>
      r.tag === 'ok' ? convert.fulfilled(r.val) : convert.rejected(consumeError(r.val, bridge)),
    );
  }

  /** The config for a batch, or, when it is invalid, every member's rejection. */
  #batchConfig(config, members) {
    try {
      return this.#config(config);
    } catch (e) {
      if (!(e instanceof InvalidInput)) throw e;
      return members.map(() => convert.rejected(e));
    }
  }

  #config(config) {
    return witConfig(config, (fn) => this.#run(fn));
  }

  #call(config, fn) {
    const c = this.#config(config);
    return answer(() => this.#run((q) => fn(q, c)));
  }

  /** Runs `fn(quota)` in an idle instance (a fresh one if none), with the store of a consume. */
  #run(fn, bridge = null) {
    const instance = this.#idle.pop() ?? this.#runtime.instance(this.#memoryLimit);
    instance.memoryLimit = this.#memoryLimit;
    instance.bridge = bridge;
    try {
      return instance.call(this.#fuel, fn);
    } finally {
      instance.bridge = null;
      // After the call: a call made from its store callbacks ended first.
      this.#last = instance;
      if (instance.live) this.#idle.push(instance);
    }
  }
}
