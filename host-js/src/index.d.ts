// The public API. The data types are the ones jco generates from
// wit/delimiter.wit (generated/interfaces/delimiter-quota-types.d.ts):
// records as they are; where this API differs, it says so (lists a caller
// may leave out, deltas by name, jco's { tag, val } variants made plain).
// `npm run lint` type-checks this file and tests/types.check.ts against
// the generated declarations.

import type {
  ChildLimitExcess,
  ClaimEntry,
  CommitOutcome,
  Delta,
  Generation,
  InvalidInput as WitInvalidInput,
  MissingLimit,
  Model,
  OverLimitInfo,
  Project,
  ProjectLimit,
  RegisteredLimit,
  Request as WitRequest,
  ResourceLimit,
  ResourceUsage,
  UsageEntry,
  Violation,
} from '../generated/interfaces/delimiter-quota-types.js';

export type {
  ChildLimitExcess,
  ClaimEntry,
  CommitOutcome,
  Delta,
  Generation,
  IdKind,
  MissingLimit,
  Model,
  OverLimitInfo,
  Project,
  ProjectLimit,
  RegisteredLimit,
  ResourceLimit,
  ResourceUsage,
  UsageEntry,
  Violation,
} from '../generated/interfaces/delimiter-quota-types.js';

// ---- inputs ------------------------------------------------------------------

/** All limits known to the caller; a list left out is empty. */
export interface Limits {
  registered?: RegisteredLimit[];
  project?: ProjectLimit[];
}

/** Usage pre-summed for the requesting project's path (the WIT's `path-usage`). */
export interface PathUsage {
  local?: ResourceUsage[];
  subtree?: UsageEntry[];
}

/**
 * Everything read from storage at one point in time. `usage`: an array of
 * entries is local usage (the component sums subtrees); a PathUsage is the
 * path form. A list left out is empty.
 */
export interface Snapshot {
  projects?: Project[];
  limits?: Limits;
  usage?: UsageEntry[] | PathUsage;
  generations?: Generation[];
}

/**
 * Deltas as `{ resource, delta }` entries, or as an object of name: delta
 * (in the object's key order, which puts integer-like names first).
 */
export type Deltas = Delta[] | Record<string, bigint>;

/** A request by one project. */
export interface Request {
  project: string;
  deltas?: Deltas;
}

/**
 * Settings for every call; defaults nested, 64, zero (DEFAULT_CONFIG). A
 * name outside the WIT's enums (Keystone's `strict_two_level`, or a typo)
 * is parsed by the component, whose error a bad one gets.
 */
export interface Config {
  model?: Model | (string & {});
  maxDepth?: number;
  missingLimit?: MissingLimit | (string & {});
}

/**
 * How hard consume and consumeBatch try: until a deadline, with an attempt
 * cap as a guard (DEFAULT_POLICY has the defaults, the WIT's). Checked by
 * the component in field order (maxAttempts >= 1, deadlineUs >= 1,
 * baseDelayUs <= maxDelayUs, maxDelayUs <= deadlineUs): a bad value is an
 * InvalidInput `invalid-config` whose `field` names it (`max-attempts`, ...).
 */
export interface RetryPolicy {
  /** Attempts in all (read, decide, commit), at least 1. Default 100. */
  maxAttempts?: number;
  /**
   * The time budget of one call in microseconds, on the store's nowUs
   * clock: no attempt starts once the next backoff would end past it.
   * Default 2_000_000n (2 s).
   */
  deadlineUs?: bigint;
  /** Cap of the first backoff in microseconds; each later cap doubles. Default 1000n. */
  baseDelayUs?: bigint;
  /** Largest backoff in microseconds. Default 50_000n. */
  maxDelayUs?: bigint;
  /**
   * Seeds the jitter, for reproducible tests only (callers sharing a seed
   * back off in lockstep). Left out or null, the default: drawn afresh
   * per call from the store's entropy.
   */
  seed?: bigint | null;
  /**
   * Opt-in (default false): every attempt after the first conflict is a
   * locked one (the store's readLocked locks the path's generation rows
   * and the attempt reads, decides and commits in that transaction), so it
   * cannot conflict; no backoff precedes it. Lone consumes only.
   */
  lockAfterConflict?: boolean;
}

/** One oslo.limit 2.12 flat `Enforcer.enforce` call, limits and usage fetched. */
export interface OsloCheck {
  /** null or left out: registered limits only. */
  projectId?: string | null;
  deltas?: Deltas;
  registered?: ResourceLimit[];
  project?: ResourceLimit[];
  usage?: ResourceUsage[];
}

/**
 * What every store may add: its own wait, clock and randomness (tests
 * make them virtual). None of them can report a failure: anything they
 * throw stops the call (nothing is committed) and is rethrown as is.
 */
export interface StoreTiming {
  /**
   * Waits `delayUs` microseconds before attempt `attempt + 1` (never
   * called with 0); the default blocks the thread (Atomics.wait).
   */
  backoff?(attempt: number, delayUs: bigint): void;
  /**
   * A monotonic clock in microseconds (any origin), the policy's deadline
   * is measured on; a u64 (BigInt, or a safe-integer Number). The
   * default: process.hrtime.bigint() / 1000n.
   */
  nowUs?(): bigint | number;
  /**
   * Fresh random bits (a u64), asked once per call whose policy has no
   * seed. The default: crypto.getRandomValues.
   */
  entropy?(): bigint | number;
}

/**
 * What a batch commit did: 'committed' (every claimed generation bumped
 * once, every member's rows written), 'conflict' or 'conflict-after-wait'
 * (a claimed generation had moved on; nothing written), or a member whose
 * own rows failed to write: `memberFailed` its position in the `members`
 * passed (from 0), `error` the StorageError that member gets (its `cause`
 * carried), or a message. Everything is rolled back in every case but
 * 'committed'; after a member failure the others are decided again
 * without it and committed again.
 */
export type BatchCommitOutcome =
  | 'committed'
  | 'conflict'
  | 'conflict-after-wait'
  | { memberFailed: number; error: StorageError | string };

/**
 * The caller's storage as consume drives it, synchronously (the
 * component's store import is a plain function). read and commit report a
 * storage failure by throwing a StorageError; anything else they throw
 * stops the consume and is rethrown as is. A store with readBatch and
 * commitBatch serves consumeBatch too.
 */
export interface Store extends StoreTiming {
  /** The limits, usage and generations of `project`'s path (generations no later than usage). */
  read(project: string, resources: string[]): Snapshot;
  /**
   * In ONE transaction: the request's rows, and every claimed generation
   * compared and bumped (root first). On a miss, everything rolled back
   * and 'conflict', or 'conflict-after-wait' when the losing statement
   * had waited for the winning writer (the driver then re-reads at once,
   * without a backoff).
   */
  commit(claim: ClaimEntry[], request: WitRequest): CommitOutcome;
  /**
   * A locked attempt's read (policy lockAfterConflict): begins a
   * transaction, locks the generation rows of `project`'s path root first
   * (SELECT ... FOR UPDATE, one statement per row) and reads inside it,
   * leaving it open: the next commit writes and commits in it, or unlock
   * rolls it back. undefined or null: the store takes no locks. Without
   * this method, every attempt is optimistic.
   */
  readLocked?(project: string, resources: string[]): Snapshot | null | undefined;
  /** Rolls back the transaction readLocked began (its attempt was refused); what it throws is rethrown by consume. */
  unlock?(): void;
  readBatch?(projects: string[], resources: string[]): Snapshot;
  commitBatch?(claim: ClaimEntry[], members: WitRequest[]): BatchCommitOutcome;
}

/**
 * The caller's storage as consumeBatch drives it (synchronously, as
 * Store). readBatch and commitBatch report a storage failure of the whole
 * batch by throwing a StorageError (every member without an outcome gets
 * it); anything else they throw stops the call and is rethrown as is.
 */
export interface BatchStore extends StoreTiming {
  /**
   * In ONE read view: the limits, usage (local form, every project of the
   * members' paths) and generations of the paths of all `projects` for
   * `resources` (generations no later than usage).
   */
  readBatch(projects: string[], resources: string[]): Snapshot;
  /**
   * In ONE transaction: compares and bumps each entry of `claim` once, in
   * the order given (root first, then by depth, then project id: the one
   * row order), then writes each of `members`' rows, in order.
   */
  commitBatch(claim: ClaimEntry[], members: WitRequest[]): BatchCommitOutcome;
  read?(project: string, resources: string[]): Snapshot;
  commit?(claim: ClaimEntry[], request: WitRequest): CommitOutcome;
}

/** The numbers of a project's path, in path order (see Prepared.evaluate). */
export interface PathNumbers {
  local: bigint[] | BigInt64Array;
  subtree: bigint[] | BigInt64Array;
  generations: bigint[] | BigUint64Array;
}

/**
 * One member of Prepared.evaluateBatch (the WIT's `prepared-member`): a
 * request, by name, and the numbers Prepared.evaluate takes for it, in the
 * same shapes (n = the number of deltas, path = Prepared.path of the
 * project): local[r] the project's own usage of the r-th delta's
 * resource, subtree[k * n + r] the subtree usage of path[k] for it,
 * generations[k] the generation read for path[k]. Every member's numbers
 * come from the batch's one read.
 */
export interface PreparedMember extends PathNumbers {
  request: Request;
}

/** Limits on every call into the component (an Enforcer's, a Prepared's). */
export interface EnforcerOptions {
  /** Fuel per call (function entries, exits and loop iterations); default DEFAULT_FUEL. */
  fuel?: bigint | number;
  /** Linear memory an instance may grow to, in bytes; default DEFAULT_MEMORY_LIMIT. */
  memoryLimit?: number;
}

// ---- results -----------------------------------------------------------------

/** Admitted with the claim (from the project up), or refused with every violation. */
export type Decision = { admitted: true; claim: ClaimEntry[] } | { admitted: false; violations: Violation[] };

/** The room left for one resource. */
export type ResourceHeadroom =
  | { resource: string; unlimited: false; room: bigint }
  | { resource: string; unlimited: true; room: null };

/** A config with every setting, in the WIT's names. */
export interface ParsedConfig {
  model: Model;
  maxDepth: number;
  missingLimit: MissingLimit;
}

/** How many units fit now. */
export type Count = { unlimited: false; units: bigint } | { unlimited: true; units: null };

/** A successful consume. */
export interface Consumed {
  claim: ClaimEntry[];
  attempts: number;
}

/**
 * One member's outcome of a batch, shaped as Promise.allSettled's: the
 * value a lone call would return, or the error it would throw.
 */
export type Settled<T, E extends QuotaError> = { status: 'fulfilled'; value: T } | { status: 'rejected'; reason: E };

type InvalidFindingOf<I> = I extends { tag: infer K; val: infer V } ? { kind: K; message: string } & V : never;

/** One problem found by validate: an input error with its fields, or a child limit above its parent's. */
export type Finding =
  | InvalidFindingOf<WitInvalidInput>
  | ({ kind: 'child-limit-exceeds-parent' } & ChildLimitExcess);

// ---- errors ------------------------------------------------------------------

/** The base of every error Delimiter throws. */
export class QuotaError extends Error {
  readonly kind: string;
}

/** The kebab-case name of an input error: a case of the WIT's `invalid-input`. */
export type InvalidKind = WitInvalidInput['tag'];

/**
 * The input was rejected; nothing was decided. The fields of the kind's
 * payload record are properties (the ones a kind lacks are undefined) and
 * are in `fields`; the message is the component's.
 */
export class InvalidInput extends QuotaError {
  readonly kind: InvalidKind;
  readonly fields: Record<string, string | bigint | number | undefined>;
  readonly what?: 'project' | 'parent' | 'resource';
  readonly project?: string;
  readonly parent?: string;
  readonly resource?: string;
  readonly depth?: number;
  readonly maxDepth?: number;
  readonly limit?: bigint;
  readonly usage?: bigint;
  readonly delta?: bigint;
  readonly model?: string;
  readonly field?: string;
  readonly expected?: bigint;
  readonly actual?: bigint;
}

/** consume was refused on the snapshot of attempt `attempts` (final). */
export class OverLimit extends QuotaError {
  readonly kind: 'over-limit';
  readonly violations: Violation[];
  readonly attempts: number;
}

/** Every one of `attempts` attempts of consume met a conflict. */
export class RetriesExhausted extends QuotaError {
  readonly kind: 'retries-exhausted';
  readonly attempts: number;
}

/**
 * The store failed (and rolled back). Thrown by a store with the
 * database's error as `cause`; thrown by consume with `attempts` and the
 * storage's own error as `cause`.
 */
export class StorageError extends QuotaError {
  constructor(message: string, options?: { cause?: unknown; attempts?: number });
  readonly kind: 'storage';
  readonly attempts: number | undefined;
}

/** The component itself failed; never an input error or an over-limit. */
export class GuestFault extends QuotaError {
  readonly kind: 'trap' | 'out-of-fuel' | 'memory-limit' | 'load';
}

/** What consume throws, and a consumeBatch member's rejection, for a call that committed nothing. */
export type ConsumeError = OverLimit | RetriesExhausted | StorageError | InvalidInput;

// ---- calls -------------------------------------------------------------------

export const DEFAULT_FUEL: bigint;
export const DEFAULT_MEMORY_LIMIT: number;
export const DEFAULT_CONFIG: Readonly<{ model: 'nested'; maxDepth: 64; missingLimit: 'zero' }>;
/** The WIT's retry-policy defaults: 100 attempts, a 2 s deadline, backoff caps from 1 ms doubling to 50 ms, no seed. */
export const DEFAULT_POLICY: Readonly<{
  maxAttempts: 100;
  deadlineUs: bigint;
  baseDelayUs: bigint;
  maxDelayUs: bigint;
  seed: null;
  lockAfterConflict: false;
}>;

/** Every call of the component, with fuel and a memory cap of its own. */
export class Enforcer {
  constructor(options?: EnforcerOptions);
  /** Fuel for each call, from the next call on. */
  get fuel(): bigint;
  set fuel(fuel: bigint | number);
  /** The linear memory an instance may grow to, in bytes, from the next call on. */
  memoryLimit: number;
  /** Fuel the last call used (null before a call, or after a fault). */
  readonly lastFuelUsed: bigint | null;
  /** The largest linear memory the last call's instance grew to, in bytes. */
  readonly memoryHighWater: number;
  evaluate(snapshot: Snapshot, request: Request, config?: Config): Decision;
  headroom(snapshot: Snapshot, project: string, resources: string[], config?: Config): ResourceHeadroom[];
  maxCount(snapshot: Snapshot, request: Request, config?: Config): Count;
  validate(projects: Project[], limits?: Limits, config?: Config): Finding[];
  osloCheck(check: OsloCheck): OverLimitInfo[];
  consume(store: Store, request: Request, config?: Config, policy?: RetryPolicy): Consumed;
  evaluateBatch(snapshot: Snapshot, requests: Request[], config?: Config): Settled<Decision, InvalidInput>[];
  consumeBatch(store: BatchStore, requests: Request[], config?: Config, policy?: RetryPolicy): Settled<Consumed, ConsumeError>[];
  parseModel(name: string): Model;
  parseConfig(config: Config): ParsedConfig;
}

/**
 * The config, tree and limits checked and indexed once, in an instance of
 * their own; per decision only the request and its path's numbers.
 */
export class Prepared {
  constructor(projects: Project[], limits?: Limits, config?: Config, options?: EnforcerOptions);
  /** Whether the instance is live (no fault ended it since the last call). */
  readonly live: boolean;
  readonly lastFuelUsed: bigint | null;
  /** The project, then each ancestor up to the root: the order of the numbers. */
  path(project: string): string[];
  /**
   * With n deltas: local[r] is the project's own usage of the r-th delta's
   * resource, subtree[k * n + r] the subtree usage of path[k] for it,
   * generations[k] the generation read for path[k].
   */
  evaluate(request: Request, numbers: PathNumbers): Decision;
  /**
   * Decides `members` in arrival order, each against its own numbers plus
   * the deltas of the members admitted before it (semantics, "Combining
   * concurrent consumes"): an earlier admission of the same project adds
   * to its local usage, one in the subtree of path[k] to path[k]'s subtree
   * usage (under flat, only the project's own counts). On numbers counted
   * from one snapshot, what evaluateBatch decides on that snapshot. One
   * outcome per member, in order: the Decision (its claim named, with the
   * generations the member passed), or the InvalidInput evaluate would
   * throw for the member's request and numbers (`shape-mismatch`,
   * `unknown-project`, ...), then `overflow` when an earlier admission
   * overflows its usage; a member's error leaves the others' decisions as
   * they were. Throws only a TypeError or RangeError for a value of the
   * wrong type (nothing decided), and a GuestFault.
   */
  evaluateBatch(members: PreparedMember[]): Settled<Decision, InvalidInput>[];
}

export function evaluate(snapshot: Snapshot, request: Request, config?: Config): Decision;
export function headroom(snapshot: Snapshot, project: string, resources: string[], config?: Config): ResourceHeadroom[];
export function maxCount(snapshot: Snapshot, request: Request, config?: Config): Count;
export function validate(projects: Project[], limits?: Limits, config?: Config): Finding[];
export function osloCheck(check: OsloCheck): OverLimitInfo[];
/**
 * Consumes `request` through `store`: read, decide, commit; on a conflict
 * re-read at once (after a wait) or back off with fresh jitter, until the
 * policy's deadline or attempt cap. Throws OverLimit (a refusal, final),
 * RetriesExhausted, StorageError or InvalidInput when nothing was
 * committed; whatever else the store threw, as is; a GuestFault.
 */
export function consume(store: Store, request: Request, config?: Config, policy?: RetryPolicy): Consumed;
/**
 * Decides `requests` in order against one snapshot, each against the
 * snapshot plus the deltas of the requests admitted before it: what the
 * same requests would get one by one. One outcome per request, in order:
 * the Decision evaluate would return, or the InvalidInput it would throw
 * (a config or snapshot problem is every member's). Throws only a
 * TypeError or RangeError for a value of the wrong type, and a GuestFault.
 */
export function evaluateBatch(snapshot: Snapshot, requests: Request[], config?: Config): Settled<Decision, InvalidInput>[];
/**
 * Consumes `requests` as one batch through `store`: one readBatch, the
 * decisions of evaluateBatch, one commitBatch of the admitted members with
 * the union of their claims (each project once, root first, then by
 * depth, then id). A conflict re-runs the whole batch from a fresh read
 * within the policy's budget; a member whose rows failed gets its
 * StorageError and the others are decided again without it. No outcome
 * before the commit that made it. One outcome per request, in order: the
 * Consumed consume would return, or the error it would throw (OverLimit,
 * RetriesExhausted, StorageError, InvalidInput). Throws a TypeError for a
 * store without readBatch or commitBatch (before anything runs), what the
 * store threw other than a StorageError (as is; nothing committed), and a
 * GuestFault.
 */
export function consumeBatch(
  store: BatchStore,
  requests: Request[],
  config?: Config,
  policy?: RetryPolicy,
): Settled<Consumed, ConsumeError>[];
export function parseModel(name: string): Model;
export function parseConfig(config: Config): ParsedConfig;
