// Type-checked by `npm run lint` (tsc, never run): the declarations of
// src/index.d.ts against jco's generated ones, and a caller's code against
// the declarations.

import type {
  InvalidInput as WitInvalidInput,
  PreparedMember as WitPreparedMember,
} from '../generated/interfaces/delimiter-quota-types.js';
import * as d from '../src/index.js';

// InvalidInput declares exactly the fields of the WIT's invalid-input
// payload records, with their types.
type Union<T> = T extends unknown ? T : never;
type PayloadFields = Union<WitInvalidInput> extends infer I ? (I extends { val: infer V } ? keyof V : never) : never;
type Declared = Exclude<keyof d.InvalidInput, keyof d.QuotaError | 'fields'>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const fieldsAreTheWits: Same<PayloadFields, Declared> = true;
type FieldType<K extends PropertyKey> =
  Union<WitInvalidInput> extends infer I ? (I extends { val: infer V } ? (K extends keyof V ? V[K] : never) : never) : never;
const typesAreTheWits: { [K in Declared]: Same<NonNullable<FieldType<K>>, NonNullable<d.InvalidInput[K]>> } = {
  what: true,
  project: true,
  parent: true,
  resource: true,
  depth: true,
  maxDepth: true,
  limit: true,
  usage: true,
  delta: true,
  model: true,
  field: true,
  expected: true,
  actual: true,
};

// A caller.
const snapshot: d.Snapshot = {
  projects: [{ id: 'org' }, { id: 'web', parent: 'org' }],
  limits: { registered: [{ resource: 'servers', limit: 5n }] },
  usage: [{ project: 'web', resource: 'servers', usage: 4n }],
  generations: [{ project: 'web', generation: 3n }, { project: 'org', generation: 9n }],
};
const decision = d.evaluate(snapshot, { project: 'web', deltas: { servers: 1n } }, { model: 'strict_two_level' });
const claimed: bigint[] = decision.admitted ? decision.claim.map((c) => c.generation) : [];
const over: bigint[] = decision.admitted ? [] : decision.violations.map((v) => v.limit - v.usage);
// @ts-expect-error 64-bit values are BigInt
d.evaluate(snapshot, { project: 'web', deltas: [{ resource: 'servers', delta: 1 }] });

const rooms: (bigint | null)[] = d.headroom(snapshot, 'web', ['servers']).map((h) => (h.unlimited ? null : h.room));
const units = d.maxCount(snapshot, { project: 'web', deltas: { servers: 1n } });
const fits: bigint = units.unlimited ? -1n : units.units;

for (const finding of d.validate(snapshot.projects ?? [], snapshot.limits)) {
  if (finding.kind === 'child-limit-exceeds-parent') {
    const excess: bigint = finding.childLimit - finding.parentLimit;
  } else if (finding.kind === 'too-deep') {
    const depth: number = finding.maxDepth;
  }
}

const store: d.Store = {
  read: (_project, _resources) => snapshot,
  commit: (claim, request) => (claim.length > 0 && request.deltas.length > 0 ? 'committed' : 'conflict'),
  backoff: (_attempt, delayUs) => void (delayUs > 0n),
};
try {
  const done: d.Consumed = d.consume(store, { project: 'web', deltas: { servers: 1n } }, undefined, { maxAttempts: 20 });
} catch (e) {
  if (e instanceof d.InvalidInput && e.kind === 'unknown-project') {
    const project: string | undefined = e.project;
  } else if (e instanceof d.OverLimit) {
    const attempts: number = e.attempts;
  } else if (e instanceof d.StorageError) {
    const cause: unknown = e.cause;
  } else if (e instanceof d.GuestFault && e.kind === 'out-of-fuel') {
    const enforcer = new d.Enforcer({ fuel: d.DEFAULT_FUEL * 2n });
    enforcer.fuel = 1_000_000;
    const fuel: bigint = enforcer.fuel;
  }
}

// Batches: one outcome per request, as Promise.allSettled's.
const requests: d.Request[] = [
  { project: 'web', deltas: { servers: 1n } },
  { project: 'web', deltas: [{ resource: 'servers', delta: -1n }] },
];
const decisions: (boolean | string)[] = d.evaluateBatch(snapshot, requests).map((o) =>
  o.status === 'fulfilled' ? o.value.admitted : o.reason.kind,
);
const batchStore: d.BatchStore = {
  readBatch: (_projects, _resources) => snapshot,
  commitBatch: (claim, members) =>
    members.length === 0 ? { memberFailed: 0, error: new d.StorageError('duplicate key') } : claim.length > 0 ? 'committed' : 'conflict-after-wait',
  nowUs: () => 0n,
  entropy: () => 42n,
};
for (const outcome of new d.Enforcer().consumeBatch(batchStore, requests, undefined, { deadlineUs: 500_000n, seed: null })) {
  if (outcome.status === 'fulfilled') {
    const attempts: number = outcome.value.attempts;
  } else if (outcome.reason instanceof d.OverLimit) {
    const violations: d.Violation[] = outcome.reason.violations;
  } else if (outcome.reason.kind === 'storage' || outcome.reason.kind === 'retries-exhausted') {
    const attempts: number | undefined = outcome.reason.attempts;
  }
}
// @ts-expect-error consumeBatch needs readBatch and commitBatch
d.consumeBatch(store, requests);
const policy: Required<d.RetryPolicy> = { ...d.DEFAULT_POLICY, seed: 7n };

const prepared = new d.Prepared(snapshot.projects ?? [], snapshot.limits, undefined, { memoryLimit: 64 << 20 });
const path: string[] = prepared.path('web');
const decided: d.Decision = prepared.evaluate(
  { project: 'web', deltas: { servers: 1n } },
  { local: [4n], subtree: new BigInt64Array([4n, 4n]), generations: [3n, 9n] },
);

// A prepared batch: members by name with their numbers; the WIT's
// prepared-member is one (every field it has, in a type the API takes).
const asWit = (m: WitPreparedMember): d.PreparedMember => m;
const batch: (d.ClaimEntry[] | d.InvalidKind)[] = prepared
  .evaluateBatch([
    { request: { project: 'web', deltas: { servers: 1n } }, local: [4n], subtree: [4n, 4n], generations: [3n, 9n] },
    {
      request: { project: 'web', deltas: [{ resource: 'servers', delta: 2n }] },
      local: new BigInt64Array([4n]),
      subtree: new BigInt64Array([4n, 4n]),
      generations: new BigUint64Array([3n, 9n]),
    },
  ])
  .map((o) => (o.status === 'fulfilled' ? (o.value.admitted ? o.value.claim : []) : o.reason.kind));
// @ts-expect-error a member's numbers are BigInt
prepared.evaluateBatch([{ request: { project: 'web' }, local: [4], subtree: [4n, 4n], generations: [3n, 9n] }]);

export { claimed, over, rooms, fits, path, decided, decisions, policy, fieldsAreTheWits, typesAreTheWits, asWit, batch };
