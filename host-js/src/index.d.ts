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

/** How hard consume tries; defaults 5 attempts, 1 ms, 100 ms, seed 0 (DEFAULT_POLICY). */
export interface RetryPolicy {
  maxAttempts?: number;
  baseDelayUs?: bigint;
  maxDelayUs?: bigint;
  seed?: bigint;
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
 * The caller's storage as consume drives it, synchronously (the
 * component's store import is a plain function). read and commit report a
 * storage failure by throwing a StorageError; anything else they throw
 * stops the consume and is rethrown as is.
 */
export interface Store {
  /** The limits, usage and generations of `project`'s path (generations no later than usage). */
  read(project: string, resources: string[]): Snapshot;
  /** In ONE transaction: the request's rows, and every claimed generation compared and bumped. */
  commit(claim: ClaimEntry[], request: WitRequest): CommitOutcome;
  /** Waits before attempt `attempt + 1`; the default blocks the thread for delayUs. */
  backoff?(attempt: number, delayUs: bigint): void;
}

/** The numbers of a project's path, in path order (see Prepared.evaluate). */
export interface PathNumbers {
  local: bigint[] | BigInt64Array;
  subtree: bigint[] | BigInt64Array;
  generations: bigint[] | BigUint64Array;
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

// ---- calls -------------------------------------------------------------------

export const DEFAULT_FUEL: bigint;
export const DEFAULT_MEMORY_LIMIT: number;
export const DEFAULT_CONFIG: Readonly<{ model: 'nested'; maxDepth: 64; missingLimit: 'zero' }>;
export const DEFAULT_POLICY: Readonly<{ maxAttempts: 5; baseDelayUs: bigint; maxDelayUs: bigint; seed: bigint }>;

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
}

export function evaluate(snapshot: Snapshot, request: Request, config?: Config): Decision;
export function headroom(snapshot: Snapshot, project: string, resources: string[], config?: Config): ResourceHeadroom[];
export function maxCount(snapshot: Snapshot, request: Request, config?: Config): Count;
export function validate(projects: Project[], limits?: Limits, config?: Config): Finding[];
export function osloCheck(check: OsloCheck): OverLimitInfo[];
export function consume(store: Store, request: Request, config?: Config, policy?: RetryPolicy): Consumed;
export function parseModel(name: string): Model;
export function parseConfig(config: Config): ParsedConfig;
