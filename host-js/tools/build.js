// The build: target/delimiter.wasm (or $DELIMITER_COMPONENT_WASM) through
// `jco transpile` into generated/ (an ES module, its TypeScript
// declarations and the core modules), then the fuel and memory meter into
// the main core module (tools/meter.js). Skipped when generated/ was made
// from the same component by the same tools (a stamp of their hashes), so
// that every recipe can depend on it cheaply.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');
const out = join(root, 'generated');
const component = process.env.DELIMITER_COMPONENT_WASM
  ? resolve(process.env.DELIMITER_COMPONENT_WASM)
  : resolve(root, '..', 'target', 'delimiter.wasm');

// The name jco gives the module and its core modules (delimiter.js,
// delimiter.core.wasm, ...): src/runtime.js loads them by these names.
const NAME = 'delimiter';
const MAIN_CORE = `${NAME}.core.wasm`;

if (!existsSync(component)) {
  console.error(`${component}: missing; build it first with \`just component\``);
  process.exit(1);
}
const bytes = readFileSync(component);
const version = (pkg) => JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version;
const jcoVersion = version('@bytecodealliance/jco');
const binaryenVersion = version('binaryen');
const stamp = createHash('sha256')
  .update(bytes)
  .update(`jco ${jcoVersion} binaryen ${binaryenVersion}`)
  .update(readFileSync(join(here, 'build.js')))
  .update(readFileSync(join(here, 'meter.js')))
  .digest('hex');
const stampFile = join(out, 'stamp');
if (existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === stamp) {
  process.exit(0);
}

const { transpile } = await import('@bytecodealliance/jco');
const { meter } = await import('./meter.js');
const started = Date.now();
const { files } = await transpile(bytes, {
  name: NAME,
  // The host compiles the core modules once per process and instantiates
  // them itself (src/runtime.js), with the meter's imports.
  instantiation: 'sync',
  quiet: true,
});

// Written beside, then moved into place: a half-written generated/ is never seen.
const next = `${out}.next`;
rmSync(next, { recursive: true, force: true });
for (const [name, content] of Object.entries(files)) {
  const path = join(next, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, name === MAIN_CORE ? meter(content) : content);
}
writeFileSync(join(next, 'stamp'), `${stamp}\n`);
rmSync(out, { recursive: true, force: true });
renameSync(next, out);
console.log(
  `${relative(process.cwd(), out)}: ${relative(process.cwd(), component)} transpiled by jco ${jcoVersion}, ` +
    `metered by binaryen ${binaryenVersion} (${((Date.now() - started) / 1000).toFixed(1)} s)`,
);
