// Fuel and a memory cap for the component's core module, added at build
// time because V8 (unlike wasmtime) offers neither.
//
// - Fuel: binaryen's `log-execution` pass puts a call at every function
//   entry, function exit and loop header; that call is made to decrement an
//   exported i64 global, `delimiter:meter/fuel`, and to call the imported
//   `delimiter:meter/out-of-fuel` (which throws) once it goes below zero.
//   So a unit of fuel is one function entry, exit or loop iteration: a
//   coarser unit than wasmtime's (about one per instruction), so the same
//   budget allows more work here.
// - Memory: binaryen's `instrument-memory` pass, restricted to memory.grow,
//   routes every growth through the imported `delimiter:meter/grow`, which
//   answers the page count to grow by, or a count no memory can grow by
//   (so memory.grow fails in the guest, as wasmtime's limiter makes it).
//
// Nothing else changes: the guest computes what it computed before.

import binaryen from 'binaryen';

export const METER = 'delimiter:meter';

export function meter(bytes) {
  const m = binaryen.readBinary(bytes);
  try {
    m.setFeatures(binaryen.Features.All);
    binaryen.setPassArgument('instrument-memory', 'memory.grow');
    m.runPasses(['instrument-memory', 'log-execution']);

    // The fuel counter replaces the logging import.
    m.removeFunction('log_execution');
    // Instantiation (a start function, should the guest ever have one) runs
    // on this budget, the hosts' default; every call sets its own.
    m.addGlobal('fuel', binaryen.i64, true, m.i64.const(4_000_000_000n));
    m.addGlobalExport('fuel', `${METER}/fuel`);
    m.addFunctionImport('out_of_fuel', METER, 'out-of-fuel', binaryen.none, binaryen.none);
    const fuel = () => m.global.get('fuel', binaryen.i64);
    m.addFunction('log_execution', binaryen.i32, binaryen.none, [], m.block(null, [
      m.global.set('fuel', m.i64.sub(fuel(), m.i64.const(1n))),
      m.if(m.i64.lt_s(fuel(), m.i64.const(0n)), m.call('out_of_fuel', [], binaryen.none)),
    ]));

    // memory.grow's delta goes through the host; its result is passed on.
    m.removeFunction('memory_grow_pre');
    m.addFunctionImport('memory_grow_pre', METER, 'grow',
      binaryen.createType([binaryen.i32, binaryen.i32]), binaryen.i32);
    m.removeFunction('memory_grow_post');
    m.addFunction('memory_grow_post', binaryen.createType([binaryen.i32, binaryen.i32]), binaryen.i32, [],
      m.local.get(1, binaryen.i32));

    // The pass declares an import per load and store kind; none is used.
    m.runPasses(['remove-unused-module-elements']);
    if (!m.validate()) throw new Error('the metered module does not validate');
    return m.emitBinary();
  } finally {
    m.dispose();
  }
}
