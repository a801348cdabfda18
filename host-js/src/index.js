// delimiter: Delimiter's quota decisions for Node.js, from the one
// WebAssembly component every host embeds (transpiled by jco at build
// time). Plain objects in, plain objects out, 64-bit values as BigInt.
//
// The functions here run on one shared Enforcer (default fuel and memory
// limits); make an Enforcer of your own for other limits.

import { Enforcer } from './enforcer.js';

export { Enforcer } from './enforcer.js';
export { Prepared } from './prepared.js';
export { QuotaError, InvalidInput, OverLimit, RetriesExhausted, StorageError, GuestFault } from './errors.js';
export { DEFAULT_FUEL, DEFAULT_MEMORY_LIMIT } from './runtime.js';
export { DEFAULT_CONFIG, DEFAULT_POLICY } from './convert.js';

let shared;
const enforcer = () => (shared ??= new Enforcer());

export const evaluate = (snapshot, request, config) => enforcer().evaluate(snapshot, request, config);
export const headroom = (snapshot, project, resources, config) =>
  enforcer().headroom(snapshot, project, resources, config);
export const maxCount = (snapshot, request, config) => enforcer().maxCount(snapshot, request, config);
export const validate = (projects, limits, config) => enforcer().validate(projects, limits, config);
export const osloCheck = (check) => enforcer().osloCheck(check);
export const consume = (store, request, config, policy) => enforcer().consume(store, request, config, policy);
export const evaluateBatch = (snapshot, requests, config) => enforcer().evaluateBatch(snapshot, requests, config);
export const consumeBatch = (store, requests, config, policy) =>
  enforcer().consumeBatch(store, requests, config, policy);
export const parseModel = (name) => enforcer().parseModel(name);
export const parseConfig = (config) => enforcer().parseConfig(config);
