// The JavaScript examples of the top-level README.md and host-js/README.md
// run as written (each in a node of its own, importing the package by its
// name), so the docs cannot drift from the API.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
const DOCS = { 'README.md': '../../README.md', 'host-js/README.md': '../README.md' };
const FENCE = /^```js\n([\s\S]*?)^```/gm;

const blocks = Object.entries(DOCS).flatMap(([name, path]) =>
  [...readFileSync(new URL(path, import.meta.url), 'utf8').matchAll(FENCE)].map((m, i) => [`${name} #${i + 1}`, m[1]]),
);

test('the READMEs have JavaScript examples', () => {
  assert.ok(blocks.length >= 2, `${blocks.length} found`);
});

for (const [name, code] of blocks) {
  test(`README example ${name} runs`, () => {
    // Within the package, so that `import ... from 'delimiter'` is the package itself.
    execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: PACKAGE, stdio: 'pipe' });
  });
}
