// The component and what runs it: the core modules jco split it into,
// compiled once per process; instances made by jco's `instantiate` with
// the meter's imports added (tools/meter.js); fuel and a memory cap per
// call; and the classification of faults. An instance is entered by one
// call at a time and never again after a fault.

import { getRandomValues } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { instantiate } from '../generated/delimiter.js';
import { GuestFault } from './errors.js';

/**
 * Fuel for one call (one exported function, including every store round
 * trip of a `consume`). Counted here in function entries, exits and loop
 * iterations (tools/meter.js), a coarser unit than wasmtime's, so the same
 * budget as the Rust embedding's lets a call do more work before it stops.
 */
export const DEFAULT_FUEL = 4_000_000_000n;

/** Linear memory an instance may grow to, in bytes (as every host's). */
export const DEFAULT_MEMORY_LIMIT = 256 * 1024 * 1024;

const PAGE = 65536;
const METER = 'delimiter:meter';
const GENERATED = new URL('../generated/', import.meta.url);

/** Thrown by the meter's `out-of-fuel` import, from inside the guest. */
class OutOfFuel extends Error {}

/** The core modules, compiled on first use (a failure is a `load` fault, every time). */
export class Runtime {
  #read;
  #modules = new Map();

  /** `read(name)`: the bytes of a core module jco wrote (tests pass altered ones). */
  constructor(read = (name) => readFileSync(new URL(name, GENERATED))) {
    this.#read = read;
  }

  module(name) {
    let module = this.#modules.get(name);
    if (module === undefined) {
      try {
        module = new WebAssembly.Module(this.#read(name));
      } catch (e) {
        throw new GuestFault('load', `${name}: ${e.message}`, { cause: e });
      }
      this.#modules.set(name, module);
    }
    return module;
  }

  instance(memoryLimit) {
    return new Instance(this, memoryLimit);
  }
}

let shared;

/** The process-wide runtime of the built component. */
export const runtime = () => (shared ??= new Runtime());

/** A value jco threw for a `result` error: the component's answer, not a fault. */
export const isComponentError = (e) =>
  e instanceof Error && e.constructor.name === 'ComponentError' && Object.hasOwn(e, 'payload');

/** What the store imports answer the guest with: an `err` of the result. */
export const storeFailure = (message) => ({ payload: message });

/** The default `now-us`: a monotonic clock in microseconds (process.hrtime). */
export const monotonicUs = () => process.hrtime.bigint() / 1000n;

const bits = new BigUint64Array(1);

/** The default `entropy`: 64 fresh random bits (crypto.getRandomValues). */
export function randomU64() {
  getRandomValues(bits);
  return bits[0];
}

/** One instance of the component, with its meter. */
export class Instance {
  /** The `consume` or `consumeBatch` in progress (a StoreBridge, src/store.js), or null. */
  bridge = null;
  /** False after a fault: the instance must not be entered again. */
  live = true;
  memoryLimit;
  /** Fuel the last call used (null before one, or after a fault). */
  lastFuelUsed = null;
  /** The largest size of linear memory granted, in bytes. */
  highWater = 0;
  #denied = false;
  #inCall = false;
  #fuel = null;
  #memory = null;

  constructor(runtime, memoryLimit) {
    this.memoryLimit = memoryLimit;
    const meter = {
      'out-of-fuel': () => {
        throw new OutOfFuel('all fuel consumed');
      },
      // memory.grow(pages) runs with what this answers: the same count, or
      // one no memory can grow by, so that the guest sees a failed growth.
      grow: (_site, pages) => {
        const wanted = (this.#memory?.buffer.byteLength ?? 0) + (pages >>> 0) * PAGE;
        if (wanted > this.memoryLimit) {
          this.#denied = true;
          return -1;
        }
        this.highWater = Math.max(this.highWater, wanted);
        return pages;
      },
    };
    const store = {
      read: (project, resources) => this.#bridged('read', project, resources),
      commit: (claim, request) => this.#bridged('commit', claim, request),
      backoff: (attempt, delayUs) => this.bridge?.backoff(attempt, delayUs),
      // Neither can answer an error: outside a consume, the defaults.
      nowUs: () => (this.bridge === null ? monotonicUs() : this.bridge.nowUs()),
      entropy: () => (this.bridge === null ? randomU64() : this.bridge.entropy()),
      readLocked: (project, resources) => this.#bridged('readLocked', project, resources),
      unlock: () => this.bridge?.unlock(),
      readBatch: (projects, resources) => this.#bridged('readBatch', projects, resources),
      commitBatch: (claim, members) => this.#bridged('commitBatch', claim, members),
    };
    try {
      this.quota = instantiate((name) => runtime.module(name), { 'delimiter:quota/store': store }, (module, imports) => {
        const metered = WebAssembly.Module.imports(module).some((i) => i.module === METER);
        const instance = new WebAssembly.Instance(module, metered ? { ...imports, [METER]: meter } : imports);
        if (!metered) return instance;
        this.#fuel = instance.exports[`${METER}/fuel`];
        this.#memory = instance.exports.memory;
        return { exports: this.#guardDestructors(instance.exports) };
      }).quota;
    } catch (e) {
      if (e instanceof GuestFault) throw e;
      throw new GuestFault(this.#denied ? 'memory-limit' : 'load', e.message, { cause: e });
    }
    if (this.#fuel === null || !(this.#memory instanceof WebAssembly.Memory)) {
      throw new GuestFault('load', 'the core module has no meter: rebuild with `npm run build`');
    }
    const initial = this.#memory.buffer.byteLength;
    if (initial > memoryLimit) {
      throw new GuestFault('memory-limit', `the instance starts with ${initial} bytes, above the limit of ${memoryLimit}`);
    }
    this.highWater = initial;
  }

  /**
   * jco drops a resource whose JavaScript object was garbage-collected by
   * calling the guest's destructor from a FinalizationRegistry callback,
   * outside any call of ours: there it must not enter a faulted instance,
   * must not run on what fuel a call left, and must not throw (it would be
   * an uncaught exception). A destructor called during a call runs as the
   * call does.
   */
  #guardDestructors(exports) {
    const guarded = { ...exports };
    for (const [name, dtor] of Object.entries(exports)) {
      if (!name.includes('[dtor]')) continue;
      guarded[name] = (rep) => {
        if (this.#inCall) return dtor(rep);
        if (!this.live) return undefined; // the instance's memory goes with it
        this.#fuel.value = DEFAULT_FUEL;
        try {
          return dtor(rep);
        } catch {
          this.live = false;
          return undefined;
        }
      };
    }
    return guarded;
  }

  #bridged(method, ...args) {
    if (this.bridge === null) throw storeFailure(`store.${method} called outside consume and consumeBatch`);
    return this.bridge[method](...args);
  }

  /**
   * Runs `fn(quota)` with `fuel`. Returns its value or rethrows the
   * component's `result` error as jco threw it; anything else ends the
   * instance and is thrown as a GuestFault.
   */
  call(fuel, fn) {
    if (!this.live) throw new GuestFault('trap', 'this instance faulted before and cannot be entered again');
    this.#denied = false;
    this.lastFuelUsed = null;
    this.#fuel.value = fuel;
    this.#inCall = true;
    try {
      const value = fn(this.quota);
      this.lastFuelUsed = fuel - this.#fuel.value;
      return value;
    } catch (e) {
      if (isComponentError(e)) {
        this.lastFuelUsed = fuel - this.#fuel.value;
        throw e;
      }
      this.live = false;
      throw this.#fault(e);
    } finally {
      this.#inCall = false;
    }
  }

  #fault(e) {
    const kind = e instanceof OutOfFuel ? 'out-of-fuel' : this.#denied ? 'memory-limit' : 'trap';
    const message = e instanceof Error ? e.message : String(e);
    return new GuestFault(kind, message, { cause: e });
  }
}
