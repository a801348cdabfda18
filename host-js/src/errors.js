// Every error Delimiter throws: one family rooted at QuotaError, each with
// its details as properties (never only in its message), and guest faults
// kept apart from the rest (a trap is never an over-limit).
//
// The messages of InvalidInput are the component's own (the core's text,
// the same on every host); the other classes describe their fields.

/** The base of every error Delimiter throws. `kind` is a stable name. */
export class QuotaError extends Error {
  constructor(kind, message, options) {
    super(message, options);
    this.kind = kind;
  }

  get name() {
    return this.constructor.name;
  }
}

/**
 * The input was rejected; nothing was decided. `kind` is the WIT
 * `invalid-input` case (`unknown-project`, `release-below-zero`, ...);
 * every field of the case's payload record is a property (camelCase, as
 * jco names them) and is in `fields`.
 */
export class InvalidInput extends QuotaError {
  constructor(kind, message, fields = {}) {
    super(kind, message);
    this.fields = fields;
    Object.assign(this, fields);
  }
}

/** `consume` was refused on the snapshot of attempt `attempts` (final). */
export class OverLimit extends QuotaError {
  constructor(violations, attempts) {
    const parts = violations.map(
      (v) => `${v.resource} of project ${JSON.stringify(v.project)} (limit ${v.limit}, usage ${v.usage}, delta ${v.delta})`,
    );
    super('over-limit', `over limit: ${parts.join('; ')}`);
    this.violations = violations;
    this.attempts = attempts;
  }
}

/** Every one of `attempts` attempts of `consume` met a conflict. */
export class RetriesExhausted extends QuotaError {
  constructor(attempts) {
    super('retries-exhausted', `gave up after ${attempts} attempts, each lost to a concurrent writer`);
    this.attempts = attempts;
  }
}

/**
 * The store failed (and must have rolled back: nothing is charged). A
 * store's `read` or `commit` throws `new StorageError(message, { cause })`
 * to report a failure, `cause` being the database's own error if there is
 * one. `consume` then throws a StorageError with `attempts` set and `cause`
 * the storage's own error: the store's StorageError's cause if it had
 * one, else that StorageError itself.
 */
export class StorageError extends QuotaError {
  constructor(message, options = {}) {
    super('storage', message, 'cause' in options ? { cause: options.cause } : undefined);
    this.attempts = options.attempts;
  }
}

/**
 * The component itself failed: `kind` is `trap`, `out-of-fuel`,
 * `memory-limit` or `load`; `message` is the runtime's own account. The
 * instance it ran in is discarded; the next call gets a fresh one.
 */
export class GuestFault extends QuotaError {
  constructor(kind, message, options) {
    super(kind, `guest fault (${kind}): ${message}`, options);
  }
}
