// Runs every conformance vector through the package's public API
// (conformance/README.md, "Writing a runner").
//
// As a script it prints each failure with its identity, then exactly one
// line, `conformance js: N passed, M failed`, and exits non-zero if M > 0.
// conformance.test.js runs the same cases one node test each.
//
// Vectors: $DELIMITER_VECTORS, or ../../conformance/vectors from here.

import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as d from '../src/index.js';

const VECTORS = process.env.DELIMITER_VECTORS ?? fileURLToPath(new URL('../../conformance/vectors/', import.meta.url));

/** Every case as [identity, case], files sorted by name, cases in file order. */
export function cases() {
  const out = [];
  for (const file of readdirSync(VECTORS).filter((f) => f.endsWith('.json')).sort()) {
    const doc = parseJson(readFileSync(join(VECTORS, file), 'utf8'));
    for (const c of doc.cases) out.push([`${basename(file, '.json')}/${c.description}`, c]);
  }
  return out;
}

// JSON with every integer beyond 2**53 as an exact BigInt (the vectors hold
// 64-bit values; Node 20's JSON.parse has no access to a number's text).
// Such numbers are marked as strings first, outside strings, then revived.
const BIG = '\u0000bigint:';
const NUMBER = /-?\d+(\.\d+)?([eE][+-]?\d+)?/y;

export function parseJson(text) {
  let marked = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (ch === '-' || (ch >= '0' && ch <= '9')) {
      NUMBER.lastIndex = i;
      const token = NUMBER.exec(text)[0];
      if (/^-?\d+$/.test(token) && !Number.isSafeInteger(Number(token))) {
        // The marker as a JSON escape: a raw NUL is not allowed in a string.
        marked += `${text.slice(from, i)}"\\u0000bigint:${token}"`;
        from = i + token.length;
      }
      i += token.length - 1;
    }
  }
  marked += text.slice(from);
  return JSON.parse(marked, (_key, v) => (typeof v === 'string' && v.startsWith(BIG) ? BigInt(v.slice(BIG.length)) : v));
}

// ---- inputs ------------------------------------------------------------------

function config(c) {
  const given = c.config ?? {};
  return { model: given.model, maxDepth: given.max_depth, missingLimit: given.missing_limit };
}

const usageEntries = (rows = []) => rows.map((u) => ({ project: u.project, resource: u.resource, usage: u.usage }));

function snapshot(v) {
  const usage = v.usage ?? { local: [] };
  return {
    projects: (v.projects ?? []).map((p) => ({ id: p.id, parent: p.parent })),
    limits: limits(v),
    usage:
      'path' in usage
        ? { local: usage.path.local ?? [], subtree: usageEntries(usage.path.subtree) }
        : usageEntries(usage.local),
    generations: v.generations ?? [],
  };
}

function limits(v) {
  return {
    registered: v.registered_limits ?? [],
    project: v.project_limits ?? [],
  };
}

// A list, not an object: a case may repeat a resource on purpose.
const request = (c) => ({ project: c.request.project, deltas: c.request.deltas ?? [] });

// ---- outputs -----------------------------------------------------------------

const claimJson = (claim) => claim.map((e) => ({ project: e.project, generation: e.generation }));

function decisionJson(decision) {
  if (decision.admitted) return { admitted: true, claim: claimJson(decision.claim) };
  return {
    admitted: false,
    violations: decision.violations.map((v) => ({
      project: v.project,
      resource: v.resource,
      limit: v.limit,
      usage: v.usage,
      delta: v.delta,
    })),
  };
}

function findingJson(f) {
  if (f.kind === 'child-limit-exceeds-parent') {
    return {
      kind: f.kind,
      parent: f.parent,
      child: f.child,
      resource: f.resource,
      parent_limit: f.parentLimit,
      child_limit: f.childLimit,
    };
  }
  const out = { kind: f.kind };
  if (f.project !== undefined) out.project = f.project;
  if (f.resource !== undefined) out.resource = f.resource;
  return out;
}

// ---- operations --------------------------------------------------------------

const OPERATIONS = {
  evaluate: (c) => decisionJson(d.evaluate(snapshot(c.snapshot), request(c), config(c))),

  prepared(c) {
    // Prepared from the config, tree and limits; the request decided from
    // the case's numbers (which also reports a bad request, in evaluate's
    // order), then the path those numbers follow.
    const s = snapshot(c.snapshot);
    const prepared = new d.Prepared(s.projects, s.limits, config(c));
    const r = request(c);
    const decision = prepared.evaluate(r, { local: c.local, subtree: c.subtree, generations: c.generations });
    return { path: prepared.path(r.project), ...decisionJson(decision) };
  },

  'prepared-batch'(c) {
    // Prepared from the config, tree and limits (an error there is the
    // case's), then every member as given: its request by name and its
    // numbers; per member evaluate's result or {"error": kind}.
    const s = snapshot(c.snapshot);
    const prepared = new d.Prepared(s.projects, s.limits, config(c));
    const members = c.members.map((m) => ({
      request: request(m),
      local: m.local,
      subtree: m.subtree,
      generations: m.generations,
    }));
    return prepared.evaluateBatch(members).map((o) => settledJson(o, decisionJson));
  },

  headroom: (c) =>
    d.headroom(snapshot(c.snapshot), c.project, c.resources ?? [], config(c)).map((h) => ({
      resource: h.resource,
      headroom: h.unlimited ? 'unlimited' : h.room,
    })),

  'max-count'(c) {
    const count = d.maxCount(snapshot(c.snapshot), request(c), config(c));
    return { count: count.unlimited ? 'unlimited' : count.units };
  },

  validate(c) {
    const s = snapshot(c.snapshot);
    return d.validate(s.projects, s.limits, config(c)).map(findingJson);
  },

  'evaluate-batch'(c) {
    const members = c.requests.map((r) => ({ project: r.project, deltas: r.deltas ?? [] }));
    return d.evaluateBatch(snapshot(c.snapshot ?? {}), members, config(c)).map((o) => settledJson(o, decisionJson));
  },

  'oslo-check'(c) {
    const o = c.oslo;
    const check = {
      projectId: o.project_id,
      deltas: o.deltas ?? [],
      registered: o.registered_limits ?? [],
      project: o.project_limits ?? [],
      usage: o.usage ?? [],
    };
    return {
      over_limit: d.osloCheck(check).map((i) => ({
        resource_name: i.resourceName,
        limit: i.limit,
        current_usage: i.currentUsage,
        delta: i.delta,
      })),
    };
  },
};

/**
 * The vectors' scripted store: the n-th read or commit answers the n-th
 * step (the last once the list runs out); its clock is virtual (it starts
 * at 0 and moves by `read_us` per read, `commit_us` per commit and each
 * backoff's delay), `entropy` answers the case's, and the calls are
 * counted (with the backoffs' delays summed, `slept_us`). Reads and
 * commits answer both drivers: `read`/`commit` for consume,
 * `readBatch`/`commitBatch` for consume-batch, whose commits are recorded
 * (the claim, and the project of each member) as `want_commits` has them.
 */
class ScriptedStore {
  calls = { reads: 0, commits: 0, backoffs: 0, slept_us: 0n };
  commitsMade = [];
  #now = 0n;

  #readSteps = 0;

  constructor(spec = {}) {
    // With `locks` in the spec, readLocked answers the next read step (or
    // nothing when false) and the calls count locked reads and unlocks.
    this.locks = spec.locks;
    if (this.locks !== undefined) Object.assign(this.calls, { locked_reads: 0, unlocks: 0 });
    this.reads = spec.reads ?? [];
    this.commits = spec.commits ?? [];
    this.readUs = BigInt(spec.read_us ?? 0);
    this.commitUs = BigInt(spec.commit_us ?? 0);
    this.bits = BigInt(spec.entropy ?? 0);
  }

  static step(steps, n) {
    return n < steps.length ? steps[n] : steps.at(-1);
  }

  read() {
    this.calls.reads++;
    return this.#nextRead();
  }

  readLocked() {
    this.calls.locked_reads = (this.calls.locked_reads ?? 0) + 1;
    return this.locks ? this.#nextRead() : undefined;
  }

  unlock() {
    this.calls.unlocks = (this.calls.unlocks ?? 0) + 1;
  }

  #nextRead() {
    const step = ScriptedStore.step(this.reads, this.#readSteps++);
    this.#now += this.readUs;
    if (step === 'storage-error' || step === undefined) throw new d.StorageError('scripted read failure');
    return snapshot(step);
  }

  #commitStep() {
    const step = ScriptedStore.step(this.commits, this.calls.commits++);
    this.#now += this.commitUs;
    return step;
  }

  commit() {
    const step = this.#commitStep();
    if (step === 'committed' || step === 'conflict' || step === 'conflict-after-wait') return step;
    throw new d.StorageError('scripted commit failure');
  }

  readBatch() {
    return this.read();
  }

  commitBatch(claim, members) {
    this.commitsMade.push({ claim: claimJson(claim), members: members.map((m) => m.project) });
    const step = this.#commitStep();
    if (step === 'committed' || step === 'conflict' || step === 'conflict-after-wait') return step;
    if (step !== null && typeof step === 'object' && 'member_failed' in step) {
      return { memberFailed: step.member_failed, error: new d.StorageError('scripted member failure') };
    }
    throw new d.StorageError('scripted commit failure');
  }

  backoff(_attempt, delayUs) {
    this.calls.backoffs++;
    this.calls.slept_us += delayUs;
    this.#now += delayUs;
  }

  nowUs() {
    return this.#now;
  }

  entropy() {
    return this.bits;
  }
}

/** The case's policy in the API's names; a field left out takes the API's default (the WIT's). */
function policy(c) {
  const p = c.policy ?? {};
  return {
    maxAttempts: p.max_attempts,
    deadlineUs: p.deadline_us,
    baseDelayUs: p.base_delay_us,
    maxDelayUs: p.max_delay_us,
    seed: p.seed,
    lockAfterConflict: p.lock_after_conflict,
  };
}

/** A consume's result, or its error's kind, in the vectors' shapes. */
const consumedJson = (done) => ({ claim: claimJson(done.claim), attempts: done.attempts });

function settledJson(outcome, value) {
  if (outcome.status === 'fulfilled') return value(outcome.value);
  const e = outcome.reason;
  if (!(e instanceof d.QuotaError) || e instanceof d.GuestFault) throw e;
  return { error: e.kind };
}

function runConsume(c, seen) {
  const store = new ScriptedStore(c.store);
  seen.store = store;
  const done = d.consume(store, request(c), config(c), policy(c));
  return consumedJson(done);
}

function runConsumeBatch(c, seen) {
  const store = new ScriptedStore(c.store);
  seen.store = store;
  const members = c.requests.map((r) => ({ project: r.project, deltas: r.deltas ?? [] }));
  return d.consumeBatch(store, members, config(c), policy(c)).map((o) => settledJson(o, consumedJson));
}

/** Compared as JSON with sorted keys; integers as integers, whatever their JS type. */
function canonical(value) {
  return JSON.stringify(value, (_key, v) => {
    if (typeof v === 'bigint') return { $int: v.toString() };
    if (typeof v === 'number' && Number.isInteger(v)) return { $int: String(v) };
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]));
    }
    return v;
  });
}

const show = (value) => JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? Number(v) : v));

/**
 * The case's operation through the public API: its result in the vectors'
 * shapes, or what it threw; a consume's scripted store is left in `seen.store`.
 */
export function operate(c, seen = {}) {
  if (c.operation === 'consume') return runConsume(c, seen);
  if (c.operation === 'consume-batch') return runConsumeBatch(c, seen);
  if (Object.hasOwn(OPERATIONS, c.operation)) return OPERATIONS[c.operation](c);
  throw new Error(`unsupported operation ${JSON.stringify(c.operation)}`);
}

/** The store calls a case checks: its want_calls' counts (slept_us only when it names it). */
function callsJson(store, want) {
  const { reads, commits, backoffs, slept_us, locked_reads, unlocks } = store.calls;
  return {
    reads,
    commits,
    backoffs,
    ...(want !== null && typeof want === 'object' && 'slept_us' in want ? { slept_us } : {}),
    ...(store.locks !== undefined ? { locked_reads, unlocks } : {}),
  };
}

/** null when the case passes, else why it failed. */
export function runCase(c) {
  const op = c.operation;
  const seen = {};
  let outcome;
  try {
    outcome = ['result', operate(c, seen)];
  } catch (e) {
    if (e instanceof d.GuestFault) outcome = ['error', `guest-fault: ${e.message}`];
    else if (e instanceof d.QuotaError) outcome = ['error', e.kind];
    else return `crashed: ${e?.stack ?? e}`;
  }

  let want;
  if ('want_result' in c && !('want_error' in c)) want = ['result', c.want_result];
  else if ('want_error' in c && !('want_result' in c)) want = ['error', c.want_error];
  else return 'the case has neither (or both) want_result and want_error';
  if (canonical(outcome) !== canonical(want)) {
    return `want ${want[0]} ${show(want[1])} got ${outcome[0]} ${show(outcome[1])}`;
  }
  if (op === 'consume' || op === 'consume-batch') {
    const calls = seen.store === undefined ? null : callsJson(seen.store, c.want_calls);
    if (canonical(calls) !== canonical(c.want_calls)) {
      return `want calls ${show(c.want_calls)} got ${show(calls)}`;
    }
  }
  if (op === 'consume-batch' && canonical(seen.store?.commitsMade ?? null) !== canonical(c.want_commits)) {
    return `want commits ${show(c.want_commits)} got ${show(seen.store?.commitsMade ?? null)}`;
  }
  return null;
}

function main() {
  let passed = 0;
  let failed = 0;
  for (const [identity, c] of cases()) {
    const why = runCase(c);
    if (why === null) {
      passed++;
    } else {
      failed++;
      console.log(`FAIL ${identity}\n     ${why}`);
    }
  }
  console.log(`conformance js: ${passed} passed, ${failed} failed`);
  return failed || !passed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main();
}
