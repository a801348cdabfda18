// Prepared: the component's `prepared` resource (conformance/HOSTS.md,
// section 5). The config, tree and limits are checked and indexed once in
// an instance of the prepared's own (a resource lives in the instance that
// made it); per decision only numbers cross. The lasting numbers
// number-request gave are kept until a fault ends the instance; then the next call
// prepares again on a fresh one and asks for every number again.

import * as convert from './convert.js';
import { answer, checkLimits, invalidInput, witConfig } from './enforcer.js';
import { GuestFault } from './errors.js';
import { runtime } from './runtime.js';

export class Prepared {
  #fuel;
  #memoryLimit;
  #runtime;
  #config;
  #projects;
  #limits;
  /** The instance (replaced after a fault) and the resource in it (null until prepared again). */
  #instance;
  #resource = null;
  /** What the live resource answered: project -> { node, path }, resource name -> number. */
  #located = new Map();
  #numbers = new Map();

  /**
   * Checks and indexes `projects` and `limits` under `config` (the errors
   * `evaluate` reports for them, thrown here). `options`: `fuel` and
   * `memoryLimit`, as an Enforcer's.
   */
  constructor(projects, limits, config, options = {}) {
    ({ fuel: this.#fuel, memoryLimit: this.#memoryLimit } = checkLimits(options));
    this.#runtime = options.runtime ?? runtime();
    this.#projects = convert.projects(projects);
    this.#limits = convert.limits(limits);
    this.#instance = this.#runtime.instance(this.#memoryLimit);
    this.#config = witConfig(config, (fn) => this.#instance.call(this.#fuel, fn));
    this.#prepared();
  }

  /** Whether the instance is live (no fault ended it since the last call). */
  get live() {
    return this.#instance.live;
  }

  /** Fuel the last call used (null after a fault). */
  get lastFuelUsed() {
    return this.#instance.lastFuelUsed;
  }

  /**
   * The nodes whose usage and generation a decision for `project` needs,
   * in the order `evaluate` takes them: the project, then each ancestor up
   * to the root.
   */
  path(project) {
    return [...this.#locate(convert.string(project, 'project'), []).located.path];
  }

  /**
   * Decides `request` (as `evaluate`'s) from the numbers of its project's
   * path, n being the number of deltas: `local[r]` is the project's own
   * usage of the r-th delta's resource; `subtree[k * n + r]` the subtree
   * usage of path[k] for it; `generations[k]` the generation read for
   * path[k]. Arrays of BigInt, or BigInt64Array / BigUint64Array. The
   * decision and errors are `evaluate`'s for the same usage in path form.
   */
  evaluate(request, { local, subtree, generations } = {}) {
    const r = convert.request(request);
    const l = convert.int64s(local ?? [], 'local');
    const s = convert.int64s(subtree ?? [], 'subtree');
    const g = convert.int64s(generations ?? [], 'generations', true);
    const { located, numbers } = this.#locate(r.project, r.deltas);
    const decided = this.#call(() => this.#resource.evaluate(located.node, numbers, l, s, g));
    if (decided.tag === 'refused') return { admitted: false, violations: decided.val };
    const claim = Array.from(decided.val, (k) => {
      if (k >= located.path.length || k >= g.length) {
        throw new GuestFault('trap', `claim position ${k} is off the path`);
      }
      return { project: located.path[k], generation: g[k] };
    });
    return { admitted: true, claim };
  }

  /**
   * Decides `members` (`{ request, local, subtree, generations }`, each
   * request as `evaluate`'s and its numbers in `evaluate`'s shapes, all
   * read in one read view) in arrival order, each against its own numbers
   * plus the deltas of the members admitted before it (semantics,
   * "Combining concurrent consumes"): on numbers counted from one
   * snapshot, what evaluateBatch decides on that snapshot. One outcome per
   * member, in order, as Promise.allSettled gives them: `{ status:
   * 'fulfilled', value: decision }` (the claim named, with the
   * generations the member passed) or `{ status: 'rejected', reason:
   * InvalidInput }` (the error evaluate would throw for the member's
   * request and numbers, or `overflow` when an earlier admission
   * overflows its usage), a member's error leaving the others' decisions
   * as they were. Throws only a TypeError or RangeError for a value of the
   * wrong type (before anything crosses), and a GuestFault.
   */
  evaluateBatch(members) {
    const ms = convert.preparedMembers(members);
    // Members go by name: no numbers are kept or asked for.
    this.#prepared();
    return this.#call(() => this.#resource.evaluateBatch(ms)).map((r) =>
      r.tag === 'ok' ? convert.fulfilled(convert.decision(r.val)) : convert.rejected(invalidInput(r.val)),
    );
  }

  /** The project's node and path, and [number, delta] per delta: kept, or asked for. */
  #locate(project, deltas) {
    this.#prepared();
    const located = this.#located.get(project);
    if (located !== undefined) {
      const numbers = [];
      for (const { resource, delta } of deltas) {
        const n = this.#numbers.get(resource);
        if (n === undefined) break;
        numbers.push([n, delta]);
      }
      if (numbers.length === deltas.length) return { located, numbers };
    }
    const names = deltas.map((d) => d.resource);
    const numbered = this.#call(() => this.#resource.numberRequest(project, names));
    const fresh = { node: numbered.node, path: numbered.path };
    this.#located.set(project, fresh);
    // Only numbers below `kept` last: a higher one names a resource no
    // limit mentions and stands for this request only (HOSTS.md, section 5).
    names.forEach((name, i) => {
      if (numbered.resources[i] < numbered.kept) this.#numbers.set(name, numbered.resources[i]);
    });
    return { located: fresh, numbers: deltas.map((d, i) => [numbered.resources[i], d.delta]) };
  }

  /** The live resource: prepared again on a fresh instance after a fault. */
  #prepared() {
    if (this.#resource !== null && this.#instance.live) return;
    this.#resource = null;
    this.#located.clear();
    this.#numbers.clear();
    if (!this.#instance.live) this.#instance = this.#runtime.instance(this.#memoryLimit);
    this.#resource = this.#call((quota) => quota.prepare(this.#config, this.#projects, this.#limits));
  }

  /** `fn(quota)` in the instance, with the prepared's fuel. */
  #call(fn) {
    return answer(() => this.#instance.call(this.#fuel, fn));
  }
}
