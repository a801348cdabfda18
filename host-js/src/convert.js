// The edge between callers' plain objects and the WIT values jco lowers,
// in one place: inputs are checked for their types (strings, integers in
// range) and copied into the WIT's shapes; results are turned from jco's
// `{ tag, val }` variants into plain objects. No quota rule is checked
// here: the component checks everything else, in its own order.
//
// Why types are checked at all: jco lowers an s64 with
// BigInt.asIntN(64, BigInt(v)), so 2n ** 64n would silently become 0, and a
// wrong type thrown part-way through lowering would leave an instance
// half-entered. A value of the wrong type is the caller's bug: a TypeError
// (or a RangeError for an integer out of range), never a QuotaError.

import { StorageError } from './errors.js';

const S64_MIN = -(2n ** 63n);
const S64_MAX = 2n ** 63n - 1n;
const U64_MAX = 2n ** 64n - 1n;
const U32_MAX = 2 ** 32 - 1;

// The WIT's documented defaults (wit/delimiter.wit: config, retry-policy).
export const DEFAULT_CONFIG = Object.freeze({ model: 'nested', maxDepth: 64, missingLimit: 'zero' });
// The policy's seed is none (null): jitter drawn per call from the store's entropy.
export const DEFAULT_POLICY = Object.freeze({
  maxAttempts: 100,
  deadlineUs: 2_000_000n,
  baseDelayUs: 1000n,
  maxDelayUs: 50_000n,
  seed: null,
  lockAfterConflict: false,
});

// The WIT enums' cases, to tell a value jco can lower from a name the
// component must parse (parse-config).
const MODELS = new Set(['flat', 'strict-two-level', 'nested']);
const MISSING_LIMITS = new Set(['zero', 'unlimited']);
const COMMIT_OUTCOMES = new Set(['committed', 'conflict', 'conflict-after-wait']);

// ---- scalars -------------------------------------------------------------
//
// `what` names the value checked; a container adds where it sits (the
// index, the field) only when a check fails, so that a valid input costs
// no string building.

/** A TypeError or RangeError from inside `what`, its location prefixed. */
function within(where, e) {
  if (!(e instanceof TypeError || e instanceof RangeError)) return e;
  // `[i]...` and `: ...` (the entry itself) follow directly, a field after a dot.
  return new e.constructor(`${where}${/^[[:]/.test(e.message) ? '' : '.'}${e.message}`);
}

export function string(value, what) {
  if (typeof value !== 'string') throw new TypeError(`${what}: expected a string, got ${describe(value)}`);
  return value;
}

/** An array of strings (read, not copied). */
export function strings(value, what) {
  if (!Array.isArray(value)) throw new TypeError(`${what}: expected an array, got ${describe(value)}`);
  for (let i = 0; i < value.length; i++) string(value[i], `${what}[${i}]`);
  return value;
}

function optionalString(value, what) {
  return value === undefined || value === null ? undefined : string(value, what);
}

function integer(value, what, min, max) {
  let big;
  if (typeof value === 'bigint') big = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) big = BigInt(value);
  else throw new TypeError(`${what}: expected a BigInt (or a safe integer), got ${describe(value)}`);
  if (big < min || big > max) throw new RangeError(`${what}: ${big} is out of range [${min}, ${max}]`);
  return big;
}

export const s64 = (value, what) =>
  typeof value === 'bigint' && value >= S64_MIN && value <= S64_MAX ? value : integer(value, what, S64_MIN, S64_MAX);
export const u64 = (value, what) =>
  typeof value === 'bigint' && value >= 0n && value <= U64_MAX ? value : integer(value, what, 0n, U64_MAX);

export function u32(value, what) {
  if (typeof value === 'bigint' && value >= 0n && value <= BigInt(U32_MAX)) return Number(value);
  if (Number.isInteger(value) && value >= 0 && value <= U32_MAX) return value;
  throw new TypeError(`${what}: expected an integer in [0, ${U32_MAX}], got ${describe(value)}`);
}

/** `item(entry)` for every entry of the array `value`. */
function list(value, what, item) {
  if (!Array.isArray(value)) throw new TypeError(`${what}: expected an array, got ${describe(value)}`);
  const out = new Array(value.length);
  for (let i = 0; i < value.length; i++) {
    try {
      out[i] = item(object(value[i], ''));
    } catch (e) {
      throw within(`${what}[${i}]`, e);
    }
  }
  return out;
}

function optionalList(value, what, item) {
  return value === undefined ? [] : list(value, what, item);
}

function object(value, what) {
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`${what}: expected an object, got ${describe(value)}`);
  }
  return value;
}

/** `fn()`, a failure located at `where`. */
function at(where, fn) {
  try {
    return fn();
  } catch (e) {
    throw within(where, e);
  }
}

function describe(value) {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

// ---- inputs ----------------------------------------------------------------

export const project = (p) => ({ id: string(p.id, 'id'), parent: optionalString(p.parent, 'parent') });

export const projects = (value, what = 'projects') => list(value, what, project);

const registeredLimit = (x) => ({ resource: string(x.resource, 'resource'), limit: s64(x.limit, 'limit') });
const projectLimit = (x) => ({
  project: string(x.project, 'project'),
  resource: string(x.resource, 'resource'),
  limit: s64(x.limit, 'limit'),
});

export function limits(value, what = 'limits') {
  const l = value === undefined ? {} : object(value, what);
  return {
    registered: optionalList(l.registered, `${what}.registered`, registeredLimit),
    project: optionalList(l.project, `${what}.project`, projectLimit),
  };
}

const usageEntry = (x) => ({
  project: string(x.project, 'project'),
  resource: string(x.resource, 'resource'),
  usage: s64(x.usage, 'usage'),
});

const resourceUsage = (x) => ({ resource: string(x.resource, 'resource'), usage: s64(x.usage, 'usage') });

/** Usage as an array of entries (local), or `{ local, subtree }` (path). */
export function usage(value, what = 'usage') {
  if (value === undefined || Array.isArray(value)) {
    return { tag: 'local', val: optionalList(value, what, usageEntry) };
  }
  const u = object(value, what);
  return {
    tag: 'path',
    val: {
      local: optionalList(u.local, `${what}.local`, resourceUsage),
      subtree: optionalList(u.subtree, `${what}.subtree`, usageEntry),
    },
  };
}

const generation = (x) => ({ project: string(x.project, 'project'), generation: u64(x.generation, 'generation') });

export function snapshot(value, what = 'snapshot') {
  const s = object(value, what);
  return {
    projects: optionalList(s.projects, `${what}.projects`, project),
    limits: limits(s.limits, `${what}.limits`),
    usage: usage(s.usage, `${what}.usage`),
    generations: optionalList(s.generations, `${what}.generations`, generation),
  };
}

const delta = (x) => ({ resource: string(x.resource, 'resource'), delta: s64(x.delta, 'delta') });

/** Deltas as an array of `{ resource, delta }` (a name may repeat), or an object of name: delta. */
export function deltas(value, what = 'deltas') {
  if (Array.isArray(value)) return list(value, what, delta);
  const out = [];
  for (const [resource, d] of Object.entries(object(value, what))) {
    out.push({ resource, delta: at(what, () => s64(d, resource)) });
  }
  return out;
}

export function request(value, what = 'request') {
  const r = object(value, what);
  return { project: string(r.project, `${what}.project`), deltas: deltas(r.deltas ?? [], `${what}.deltas`) };
}

/** An array of requests (a batch's members, in arrival order). */
export function requests(value, what = 'requests') {
  if (!Array.isArray(value)) throw new TypeError(`${what}: expected an array, got ${describe(value)}`);
  const out = new Array(value.length);
  for (let i = 0; i < value.length; i++) out[i] = request(value[i], `${what}[${i}]`);
  return out;
}

/**
 * A prepared batch's members in the WIT's `prepared-member` shape, in
 * arrival order: each `{ request, local, subtree, generations }`, the
 * numbers as `int64s` takes them (a list left out is empty, as
 * Prepared.evaluate's; the component then reports its length).
 */
export function preparedMembers(value, what = 'members') {
  if (!Array.isArray(value)) throw new TypeError(`${what}: expected an array, got ${describe(value)}`);
  const out = new Array(value.length);
  for (let i = 0; i < value.length; i++) {
    const where = `${what}[${i}]`;
    const m = object(value[i], where);
    out[i] = {
      request: request(m.request, `${where}.request`),
      local: int64s(m.local ?? [], `${where}.local`),
      subtree: int64s(m.subtree ?? [], `${where}.subtree`),
      generations: int64s(m.generations ?? [], `${where}.generations`, true),
    };
  }
  return out;
}

/**
 * A config in the WIT's shape, the defaults filled in; `parsed` false when
 * a name is not one of the WIT's cases (say Keystone's `strict_two_level`),
 * for the caller to have the component parse it (parse-config), so that a
 * bad name gets the core's error and message.
 */
export function config(value, what = 'config') {
  const c = value === undefined || value === null ? {} : object(value, what);
  const out = {
    model: string(c.model ?? DEFAULT_CONFIG.model, `${what}.model`),
    maxDepth: u32(c.maxDepth ?? DEFAULT_CONFIG.maxDepth, `${what}.maxDepth`),
    missingLimit: string(c.missingLimit ?? DEFAULT_CONFIG.missingLimit, `${what}.missingLimit`),
  };
  return { config: out, parsed: MODELS.has(out.model) && MISSING_LIMITS.has(out.missingLimit) };
}

/**
 * A retry policy in the WIT's shape, the defaults filled in (the
 * component checks the values: invalid-config naming the field). A seed
 * left out or null is none: jitter drawn per call from the store's entropy.
 */
export function policy(value, what = 'policy') {
  const p = value === undefined || value === null ? {} : object(value, what);
  const seed = p.seed ?? DEFAULT_POLICY.seed;
  return {
    maxAttempts: u32(p.maxAttempts ?? DEFAULT_POLICY.maxAttempts, `${what}.maxAttempts`),
    deadlineUs: u64(p.deadlineUs ?? DEFAULT_POLICY.deadlineUs, `${what}.deadlineUs`),
    baseDelayUs: u64(p.baseDelayUs ?? DEFAULT_POLICY.baseDelayUs, `${what}.baseDelayUs`),
    maxDelayUs: u64(p.maxDelayUs ?? DEFAULT_POLICY.maxDelayUs, `${what}.maxDelayUs`),
    seed: seed === null ? undefined : u64(seed, `${what}.seed`),
    lockAfterConflict: boolean(p.lockAfterConflict ?? DEFAULT_POLICY.lockAfterConflict, `${what}.lockAfterConflict`),
  };
}

function boolean(value, what) {
  if (typeof value !== 'boolean') throw new TypeError(`${what} must be a boolean, not ${typeof value}`);
  return value;
}

export function osloRequest(value, what = 'check') {
  const o = object(value, what);
  return {
    projectId: optionalString(o.projectId, `${what}.projectId`),
    deltas: deltas(o.deltas ?? [], `${what}.deltas`),
    registered: optionalList(o.registered, `${what}.registered`, registeredLimit),
    project: optionalList(o.project, `${what}.project`, registeredLimit),
    usage: optionalList(o.usage, `${what}.usage`, resourceUsage),
  };
}

export function commitOutcome(value, what = 'store.commit') {
  if (!COMMIT_OUTCOMES.has(value)) {
    throw new TypeError(`${what}: expected 'committed', 'conflict' or 'conflict-after-wait', got ${describe(value)}`);
  }
  return value;
}

/**
 * What a store's commitBatch answered, in the WIT's `batch-outcome`:
 * 'committed', 'conflict' or 'conflict-after-wait', or `{ memberFailed:
 * index, error }` (`error` a StorageError or a message; the caller keeps
 * a StorageError for its cause, through `keep`).
 */
export function batchOutcome(value, keep, what = 'store.commitBatch') {
  if (value === 'committed') return { tag: 'committed' };
  if (COMMIT_OUTCOMES.has(value)) return { tag: 'conflict', val: value };
  if (value === null || typeof value !== 'object' || !('memberFailed' in value)) {
    throw new TypeError(
      `${what}: expected 'committed', 'conflict', 'conflict-after-wait' or { memberFailed, error }, got ${describe(value)}`,
    );
  }
  const index = u32(value.memberFailed, `${what}: memberFailed`);
  const { error } = value;
  let message;
  if (typeof error === 'string') message = error;
  else if (error instanceof StorageError) message = keep(error);
  else throw new TypeError(`${what}: error: expected a StorageError or a message, got ${describe(error)}`);
  return { tag: 'member-failed', val: { index, message } };
}

/**
 * A list of 64-bit integers as the typed array jco copies in one go (and
 * the one kind of list it lowers correctly: jco 1.12 reads a plain Array's
 * `buffer`, which it has not).
 */
export function int64s(value, what, unsigned = false) {
  const Typed = unsigned ? BigUint64Array : BigInt64Array;
  if (value instanceof Typed) return value;
  if (!Array.isArray(value)) throw new TypeError(`${what}: expected an array or a ${Typed.name}, got ${describe(value)}`);
  const check = unsigned ? u64 : s64;
  const out = new Typed(value.length);
  for (let i = 0; i < value.length; i++) out[i] = check(value[i], `${what}[${i}]`);
  return out;
}

// ---- results ---------------------------------------------------------------

export const decision = (d) =>
  d.tag === 'admitted' ? { admitted: true, claim: d.val } : { admitted: false, violations: d.val };

/** One member's outcome of a batch, shaped as Promise.allSettled's. */
export const fulfilled = (value) => ({ status: 'fulfilled', value });
export const rejected = (reason) => ({ status: 'rejected', reason });

export const headroom = (rows) =>
  rows.map(({ resource, room }) =>
    room.tag === 'unlimited'
      ? { resource, unlimited: true, room: null }
      : { resource, unlimited: false, room: room.val },
  );

export const count = (c) =>
  c.tag === 'unlimited' ? { unlimited: true, units: null } : { unlimited: false, units: c.val };

/** An input error's fields: its payload record's, as jco names them. */
export const invalidFields = (input) => ({ ...input.val });

export const finding = (f) =>
  f.tag === 'invalid'
    ? { kind: f.val.input.tag, message: f.val.message, ...invalidFields(f.val.input) }
    : { kind: f.tag, ...f.val };
