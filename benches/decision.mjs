// Table 1 for Node.js: the decision cost of the JS host (host-js, through
// jco) on the same scenarios as every runner ($DELIMITER_BENCH_DIR or
// target/bench, scenarios.json from benches/scenarios.py). Writes
// decision-js.json there, impls `js-oneshot` and `js-prepared`:
//
//     node benches/decision.mjs      (after `just js`)
//
// What one decision includes, as benches/decision.py's wheel rows (reading
// storage is not timed; its result is handed over ready-made by a
// callback):
//
// - js-oneshot: what a service on the native API does per decision: the
//   projects and limits are built once and kept; per decision the usage
//   and generations are read (a callback returning rows as a database
//   driver does: arrays), turned into usage entries and generations, a
//   snapshot and a request are built, `evaluate` runs (the module's shared
//   enforcer, its instance reused) and `decision.admitted` is read.
// - js-prepared: the same service on `Prepared`: tree and limits prepared
//   once and kept; per decision the path's numbers are read (a callback
//   returning local, subtree and generations as arrays of BigInt in path
//   order, as a store's path query yields them), `Prepared.evaluate`, and
//   `decision.admitted` read.
//
// Timing: after WARMUP_MS of calls, process.hrtime.bigint() around batches
// of about BATCH_MS, the median over ROUNDS batches of the time per call,
// the two impls of a scenario interleaved batch by batch. The garbage collector runs as it
// would in a service (the allocations are part of the cost).
// DELIMITER_BENCH_TINY=1: one call per case, not a measurement.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, release, machine, type } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as d from '../host-js/src/index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// Relative to the repository root, as every runner takes it.
const BENCH_DIR = resolve(ROOT, process.env.DELIMITER_BENCH_DIR || 'target/bench');
const TINY = !['', '0', undefined].includes(process.env.DELIMITER_BENCH_TINY);

const BATCH_MS = 4;
const ROUNDS = 40;
// Longer than decision.py's 50 ms: V8 runs the first calls of JavaScript
// and WebAssembly in baseline tiers, and optimizes them after a while.
const WARMUP_MS = 500;

/** The scenario's integers as BigInt, where the API takes 64-bit values. */
const big = (n) => BigInt(n);

/** What a service keeps between decisions: the tree, the limits, the request. */
function kept(c) {
  const snap = c.snapshot;
  return {
    projects: snap.projects.map((p) => ({ id: p.id, parent: p.parent })),
    limits: {
      registered: snap.registered_limits.map((l) => ({ resource: l.resource, limit: big(l.limit) })),
      project: snap.project_limits.map((l) => ({ project: l.project, resource: l.resource, limit: big(l.limit) })),
    },
    config: { model: c.config.model },
    project: c.request.project,
    deltas: Object.fromEntries(c.request.deltas.map((x) => [x.resource, big(x.delta)])),
  };
}

function oneshotDecider(c) {
  const snap = c.snapshot;
  const { projects, limits, config, project, deltas } = kept(c);
  // The rows a driver returns (not what is measured).
  const usageRows = snap.usage.local.map((u) => [u.project, u.resource, big(u.usage)]);
  const generationRows = snap.generations.map((g) => [g.project, big(g.generation)]);
  const readUsage = (_project, _resources) => usageRows;
  const readGenerations = (_project) => generationRows;
  const { evaluate } = d;

  // Per decision: the rows read, the snapshot and request built, one evaluate.
  const decideOnce = () => {
    const usage = readUsage(project, deltas).map(([p, resource, u]) => ({ project: p, resource, usage: u }));
    const generations = readGenerations(project).map(([p, g]) => ({ project: p, generation: g }));
    return evaluate({ projects, limits, usage, generations }, { project, deltas }, config);
  };
  const decide = () => decideOnce().admitted;

  const decision = decideOnce();
  assert.ok(decision.admitted, `${c.description}: refused`);
  return { decide, decision };
}

function preparedDecider(c, want) {
  const snap = c.snapshot;
  const { projects, limits, config, project, deltas } = kept(c);
  const prepared = new d.Prepared(projects, limits, config);
  const request = { project, deltas };

  // What the store holds: local usage, subtree sums and generations (setup, not timed).
  const parent = new Map(snap.projects.map((p) => [p.id, p.parent]));
  const local = new Map();
  const subtreeOf = new Map();
  for (const u of snap.usage.local) {
    local.set(`${u.project}\0${u.resource}`, big(u.usage));
    for (let p = u.project; p !== undefined; p = parent.get(p)) {
      const key = `${p}\0${u.resource}`;
      subtreeOf.set(key, (subtreeOf.get(key) ?? 0n) + big(u.usage));
    }
  }
  const generationOf = new Map(snap.generations.map((g) => [g.project, big(g.generation)]));
  const path = prepared.path(project);
  const resources = Object.keys(deltas);
  const numbers = {
    local: resources.map((r) => local.get(`${project}\0${r}`) ?? 0n),
    subtree: path.flatMap((p) => resources.map((r) => subtreeOf.get(`${p}\0${r}`) ?? 0n)),
    generations: path.map((p) => generationOf.get(p) ?? 0n),
  };
  // The store's path query, ready-made (not what is measured).
  const readPath = (_project, _resources) => numbers;

  const decide = () => prepared.evaluate(request, readPath(project, deltas)).admitted;

  assert.deepEqual(prepared.evaluate(request, numbers), want, `${c.description}: prepared and evaluate disagree`);
  return decide;
}

function pathLength(snap, project) {
  const parent = new Map(snap.projects.map((p) => [p.id, p.parent]));
  let n = 0;
  for (let p = project; p !== undefined; p = parent.get(p)) n++;
  return n;
}

// ---- timing --------------------------------------------------------------------

const now = () => process.hrtime.bigint();

function calibrate(f) {
  const end = now() + BigInt(WARMUP_MS * 1e6);
  while (now() < end) f();
  const t = now();
  for (let i = 0; i < 10; i++) f();
  const perCall = Math.max(Number(now() - t) / 10, 1);
  return Math.max(1, Math.floor((BATCH_MS * 1e6) / perCall));
}

function batch(f, n) {
  const t = now();
  for (let i = 0; i < n; i++) f();
  return Number(now() - t) / n;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** { name: [median ns per call, batches] } for functions timed in turn. */
function measureInterleaved(functions) {
  const out = {};
  if (TINY) {
    for (const [name, f] of Object.entries(functions)) {
      const t = now();
      f();
      out[name] = [Number(now() - t), 1];
    }
    return out;
  }
  const sizes = Object.fromEntries(Object.entries(functions).map(([name, f]) => [name, calibrate(f)]));
  const samples = Object.fromEntries(Object.keys(functions).map((name) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, f] of Object.entries(functions)) samples[name].push(batch(f, sizes[name]));
  }
  for (const [name, s] of Object.entries(samples)) out[name] = [median(s), s.length];
  return out;
}

// ---- the table -------------------------------------------------------------------

function cpuModel() {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.split(':')[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

function version(pkg) {
  const path = join(ROOT, 'host-js', 'node_modules', pkg, 'package.json');
  return JSON.parse(readFileSync(path, 'utf8')).version;
}

function write(name, doc) {
  mkdirSync(BENCH_DIR, { recursive: true });
  const path = join(BENCH_DIR, `${name}.json`);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(doc, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
  console.log(`wrote ${path} (${doc.rows.length} rows)`);
}

function main() {
  const path = join(BENCH_DIR, 'scenarios.json');
  let scenarios;
  try {
    scenarios = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    console.error(`${path}: missing; write it first with \`python3 benches/scenarios.py\` (${e.message})`);
    process.exit(1);
  }
  const rows = [];
  for (const c of scenarios.decision) {
    const { decide: oneshot, decision } = oneshotDecider(c);
    const depth = c.config.model === 'flat' ? 1 : pathLength(c.snapshot, c.request.project);
    assert.equal(decision.claim.length, depth, `${c.description}: the claim is not the path`);
    const timed = measureInterleaved({ 'js-oneshot': oneshot, 'js-prepared': preparedDecider(c, decision) });
    for (const [impl, [ns, samples]] of Object.entries(timed)) {
      rows.push({ scenario: c.scenario, resources: c.resources, impl, median_ns: Math.round(ns), samples });
    }
    console.log(
      `${`${c.scenario}/${c.resources}`.padEnd(12)} ` +
        Object.entries(timed)
          .map(([k, [ns]]) => `${k} ${(ns / 1e3).toFixed(2).padStart(8)} us`)
          .join('  '),
    );
  }
  write('decision-js', {
    table: 'decision',
    runner: 'js',
    meta: {
      cpu: cpuModel(),
      cpus: String(cpus().length),
      os: `${type()} ${release()} ${machine()}`,
      node: process.version,
      delimiter: `host-js (jco ${version('@bytecodealliance/jco')}, binaryen ${version('binaryen')} meter)`,
      tiny: TINY,
      method:
        'one decision = the work a service does per request; storage reads are callbacks returning ready-made ' +
        'data (not timed work). js-oneshot: projects and limits built once and kept; per decision usage rows and ' +
        'generation rows (arrays, as a DB driver returns them) become usage entries and generations, a snapshot ' +
        'and a request are built, evaluate runs (the shared enforcer, its instance reused, fuel and memory ' +
        'metered) and decision.admitted is read. js-prepared: a Prepared built once from the projects and ' +
        'limits; per decision the path\'s numbers read (a callback returning local, subtree and generations ' +
        'arrays of BigInt in path order), Prepared.evaluate, decision.admitted read',
      timing: TINY
        ? 'one call per case (DELIMITER_BENCH_TINY): not a measurement'
        : `${WARMUP_MS} ms of calls first (V8 optimizes in tiers), then process.hrtime.bigint() around batches ` +
          `of ~${BATCH_MS} ms; median over ${ROUNDS} batches of the time per call; implementations interleaved ` +
          'batch by batch; garbage collector running',
    },
    rows,
  });
}

main();
