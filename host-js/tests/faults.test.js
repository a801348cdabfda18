// Guest faults are errors of their own: fuel exhaustion, a memory-limit
// hit (also through a store callback during consume), a trap, and a
// component that does not load all come back as GuestFault, never as an
// input error, an over-limit or a storage error; the instance is dropped
// and the next call runs in a fresh one. Fuel and memory faults come from
// the real component; the trap and the load failure from altered copies of
// its core module (a trap where a guest panic would be one, corrupted bytes).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import binaryen from 'binaryen';
import * as d from '../src/index.js';
import { Runtime } from '../src/runtime.js';

/** A nested tree: root, `children` children, each with `leaves` leaves using one server each. */
function tree(children, leaves) {
  const projects = [{ id: 'root' }];
  const usage = [];
  const generations = [{ project: 'root', generation: 1n }];
  for (let c = 0; c < children; c++) {
    projects.push({ id: `c${c}`, parent: 'root' });
    generations.push({ project: `c${c}`, generation: 1n });
    for (let l = 0; l < leaves; l++) {
      const leaf = `c${c}-l${l}`;
      projects.push({ id: leaf, parent: `c${c}` });
      usage.push({ project: leaf, resource: 'servers', usage: 1n });
      generations.push({ project: leaf, generation: 1n });
    }
  }
  return { projects, limits: { registered: [{ resource: 'servers', limit: 1_000_000n }] }, usage, generations };
}

const oneServer = (project) => ({ project, deltas: { servers: 1n } });

/** A store over a fixed snapshot that counts its commits. */
function storeOf(snapshot) {
  return {
    commits: 0,
    read: () => snapshot,
    commit() {
      this.commits++;
      return 'committed';
    },
  };
}

function assertFault(fn, kind) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof d.GuestFault, `not a guest fault: ${e}`);
    assert.ok(!(e instanceof d.InvalidInput || e instanceof d.OverLimit || e instanceof d.StorageError));
    assert.equal(e.kind, kind, String(e));
    assert.ok(e.message.length > 0);
    return true;
  });
}

test('out of fuel is a guest fault, and the next call starts afresh', () => {
  const snapshot = tree(3, 3);
  const measured = new d.Enforcer();
  measured.evaluate(snapshot, oneServer('c0-l0'));
  const needed = measured.lastFuelUsed;
  assert.ok(needed > 100n, `a decision costs real fuel (${needed})`);

  const starved = new d.Enforcer({ fuel: needed / 2n });
  assertFault(() => starved.evaluate(snapshot, oneServer('c0-l0')), 'out-of-fuel');
  assert.equal(starved.lastFuelUsed, null);
  // The faulted instance is gone; a smaller call fits in the same budget.
  assert.equal(starved.evaluate(tree(0, 0), oneServer('root')).admitted, true);
  assert.equal(new d.Enforcer({ fuel: needed }).evaluate(snapshot, oneServer('c0-l0')).admitted, true);
});

test('out of fuel during consume is not a storage error, and nothing is committed', () => {
  const measured = new d.Enforcer();
  measured.consume(storeOf(tree(3, 3)), oneServer('c1-l1'));
  // Half the fuel: past the read, short of the commit.
  const store = storeOf(tree(3, 3));
  let reads = 0;
  const read = store.read;
  store.read = (...args) => (reads++, read(...args));
  assertFault(() => new d.Enforcer({ fuel: measured.lastFuelUsed / 2n }).consume(store, oneServer('c1-l1')), 'out-of-fuel');
  assert.equal(reads, 1);
  assert.equal(store.commits, 0);
});

test('a memory-limit hit on evaluate is a guest fault', () => {
  assertFault(() => new d.Enforcer({ memoryLimit: 2 << 20 }).evaluate(tree(40, 250), oneServer('c0-l0')), 'memory-limit');
});

test('a memory-limit hit in a store callback is a guest fault; the default limit is plenty', () => {
  const store = storeOf(tree(40, 250));
  assertFault(() => new d.Enforcer({ memoryLimit: 2 << 20 }).consume(store, oneServer('c0-l0')), 'memory-limit');
  assert.equal(store.commits, 0);

  const roomy = new d.Enforcer();
  assert.equal(roomy.consume(store, oneServer('c0-l0')).attempts, 1);
  assert.equal(store.commits, 1);
  assert.ok(roomy.memoryHighWater > 2 << 20, `${roomy.memoryHighWater}`);
});

const GENERATED = new URL('../generated/', import.meta.url);
const read = (name) => readFileSync(new URL(name, GENERATED));

/** The core module with the export `name` made to trap at once, as a panicking guest does. */
function trapping(name) {
  const m = binaryen.readBinary(read('delimiter.core.wasm'));
  try {
    m.setFeatures(binaryen.Features.All);
    const fn = binaryen.getExportInfo(m.getExport(name)).value;
    const info = binaryen.getFunctionInfo(m.getFunction(fn));
    m.removeFunction(fn);
    m.addFunction(fn, info.params, info.results, [], m.unreachable());
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}

test('a trap is a guest fault; the instance is dropped, the next call gets a fresh one', () => {
  const core = trapping('delimiter:quota/quota@0.1.0#evaluate');
  const runtime = new Runtime((name) => (name === 'delimiter.core.wasm' ? core : read(name)));
  const enforcer = new d.Enforcer({ runtime });
  assertFault(() => enforcer.evaluate(tree(1, 1), oneServer('c0-l0')), 'trap');
  assert.equal(enforcer.parseModel('flat'), 'flat');
  assertFault(() => enforcer.evaluate(tree(1, 1), oneServer('c0-l0')), 'trap');
});

test('a component that does not load is a load fault, on every call', () => {
  const bytes = read('delimiter.core.wasm');
  const middle = bytes.length >> 1;
  for (let i = middle; i < middle + 64; i++) bytes[i] ^= 0xa5;
  const runtime = new Runtime((name) => (name === 'delimiter.core.wasm' ? bytes : read(name)));
  const enforcer = new d.Enforcer({ runtime });
  assertFault(() => enforcer.evaluate(tree(1, 1), oneServer('c0-l0')), 'load');
  assertFault(() => enforcer.parseModel('flat'), 'load');
  assertFault(() => new d.Prepared([{ id: 'a' }], {}, undefined, { runtime }), 'load');
});

test('a prepared resource collected after a fault does not enter the faulted instance', () => {
  // jco drops a garbage-collected resource by calling the guest's
  // destructor from a FinalizationRegistry callback; into an instance out
  // of fuel, that was an uncaught exception that ended the process.
  const runtime = new URL('../src/runtime.js', import.meta.url).href;
  const code = `
    import { runtime } from ${JSON.stringify(runtime)};
    const instance = runtime().instance(${d.DEFAULT_MEMORY_LIMIT});
    const config = { model: 'nested', maxDepth: 64, missingLimit: 'zero' };
    instance.call(${d.DEFAULT_FUEL}n, (q) => q.prepare(config, [{ id: 'a' }], { registered: [], project: [] }));
    try { instance.call(5n, (q) => q.parseModel('flat')); } catch (e) { if (e.kind !== 'out-of-fuel') throw e; }
    for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
    console.log(instance.live ? 'live' : 'dropped');
  `;
  const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { encoding: 'utf8' });
  assert.equal(out.trim(), 'dropped');
});
