// The public API's shapes: plain objects in and out, 64-bit values as
// BigInt, the WIT's defaults, names parsed by the component, and wrong
// types refused before anything crosses into the component.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as d from '../src/index.js';

const SNAPSHOT = {
  projects: [{ id: 'org' }, { id: 'web', parent: 'org' }],
  limits: {
    registered: [{ resource: 'servers', limit: 5n }],
    project: [{ project: 'org', resource: 'servers', limit: 8n }],
  },
  usage: [
    { project: 'web', resource: 'servers', usage: 4n },
    { project: 'org', resource: 'servers', usage: 3n },
  ],
  generations: [
    { project: 'web', generation: 3n },
    { project: 'org', generation: 9n },
  ],
};
const ONE = { project: 'web', deltas: { servers: 1n } };

test('evaluate admits with the claim, from the project up, generations as BigInt', () => {
  assert.deepEqual(d.evaluate(SNAPSHOT, ONE), {
    admitted: true,
    claim: [
      { project: 'web', generation: 3n },
      { project: 'org', generation: 9n },
    ],
  });
});

test('evaluate refuses with every violation, values as BigInt', () => {
  const refused = d.evaluate(SNAPSHOT, { project: 'web', deltas: { servers: 2n } });
  assert.equal(refused.admitted, false);
  assert.deepEqual(refused.violations, [
    { project: 'web', resource: 'servers', limit: 5n, usage: 4n, delta: 2n },
    { project: 'org', resource: 'servers', limit: 8n, usage: 7n, delta: 2n },
  ]);
});

test('deltas as an object and as an array are the same request', () => {
  const asArray = { project: 'web', deltas: [{ resource: 'servers', delta: 1n }] };
  assert.deepEqual(d.evaluate(SNAPSHOT, asArray), d.evaluate(SNAPSHOT, ONE));
});

test('the config defaults are the WIT\'s: nested, depth 64, missing limits as zero', () => {
  const unregistered = { project: 'web', deltas: { ram: 1n } };
  assert.equal(d.evaluate(SNAPSHOT, unregistered).admitted, false);
  assert.equal(d.evaluate(SNAPSHOT, unregistered, { missingLimit: 'unlimited' }).admitted, true);
  // Flat: org's limit no longer caps web.
  assert.equal(d.evaluate(SNAPSHOT, { project: 'web', deltas: { servers: 1n } }, { model: 'flat' }).admitted, true);
  assert.deepEqual(d.DEFAULT_CONFIG, { model: 'nested', maxDepth: 64, missingLimit: 'zero' });
});

test('model names outside the WIT\'s are parsed by the component', () => {
  // Keystone's spelling is a name the core knows.
  assert.deepEqual(d.parseConfig({ model: 'strict_two_level' }), {
    model: 'strict-two-level',
    maxDepth: 64,
    missingLimit: 'zero',
  });
  assert.equal(d.evaluate(SNAPSHOT, ONE, { model: 'strict_two_level' }).admitted, true);
  assert.throws(
    () => d.evaluate(SNAPSHOT, ONE, { model: 'hierarchical' }),
    (e) => e instanceof d.InvalidInput && e.kind === 'unknown-model' && e.model === 'hierarchical',
  );
  assert.equal(d.parseModel('strict_two_level'), 'strict-two-level');
});

test('usage in path form decides as local usage does', () => {
  const path = {
    ...SNAPSHOT,
    usage: {
      local: [{ resource: 'servers', usage: 4n }],
      subtree: [
        { project: 'web', resource: 'servers', usage: 4n },
        { project: 'org', resource: 'servers', usage: 7n },
      ],
    },
  };
  assert.deepEqual(d.evaluate(path, ONE), d.evaluate(SNAPSHOT, ONE));
});

test('64-bit values cross exactly, at both ends of their range', () => {
  const max = 2n ** 63n - 1n;
  const snapshot = {
    projects: [{ id: 'p' }],
    limits: { registered: [{ resource: 'r', limit: max }] },
    generations: [{ project: 'p', generation: 2n ** 64n - 1n }],
  };
  assert.deepEqual(d.headroom(snapshot, 'p', ['r']), [{ resource: 'r', unlimited: false, room: max }]);
  assert.deepEqual(d.evaluate(snapshot, { project: 'p', deltas: { r: max } }).claim, [
    { project: 'p', generation: 2n ** 64n - 1n },
  ]);
});

test('a safe-integer Number is taken for a 64-bit value; results are BigInt', () => {
  const snapshot = { ...SNAPSHOT, usage: [{ project: 'web', resource: 'servers', usage: 4 }] };
  assert.deepEqual(d.evaluate(snapshot, { project: 'web', deltas: { servers: 1 } }).claim[0], {
    project: 'web',
    generation: 3n,
  });
});

test('wrong types are TypeErrors and out-of-range integers RangeErrors, not quota errors', () => {
  const cases = [
    [{ ...SNAPSHOT, projects: [{ id: 7 }] }, ONE, TypeError],
    [SNAPSHOT, { project: 'web', deltas: { servers: 1.5 } }, TypeError],
    [SNAPSHOT, { project: 'web', deltas: { servers: 2 ** 60 } }, TypeError],
    [SNAPSHOT, { project: 'web', deltas: { servers: 2n ** 63n } }, RangeError],
    [{ ...SNAPSHOT, generations: [{ project: 'web', generation: -1n }] }, ONE, RangeError],
    [{ ...SNAPSHOT, usage: 'none' }, ONE, TypeError],
  ];
  for (const [snapshot, request, type] of cases) {
    assert.throws(
      () => d.evaluate(snapshot, request),
      (e) => e instanceof type && !(e instanceof d.QuotaError),
    );
  }
  assert.throws(() => d.evaluate(SNAPSHOT, ONE, { maxDepth: -1 }), TypeError);
  assert.throws(() => d.headroom(SNAPSHOT, 'web', 'servers'), TypeError);
  assert.throws(() => d.headroom(SNAPSHOT, 'web', ['servers', 2]), /resources\[1\]: expected a string/);
});

test('headroom is per resource, sorted, unlimited as unlimited: true and room null', () => {
  assert.deepEqual(d.headroom(SNAPSHOT, 'web', ['servers', 'ram'], { missingLimit: 'unlimited' }), [
    { resource: 'ram', unlimited: true, room: null },
    { resource: 'servers', unlimited: false, room: 1n },
  ]);
});

test('maxCount counts units, or says unlimited', () => {
  assert.deepEqual(d.maxCount(SNAPSHOT, ONE), { unlimited: false, units: 1n });
  assert.deepEqual(d.maxCount(SNAPSHOT, { project: 'web', deltas: { ram: 1n } }, { missingLimit: 'unlimited' }), {
    unlimited: true,
    units: null,
  });
});

test('validate gives findings as plain objects: input errors with their fields, child limits above parents', () => {
  assert.deepEqual(d.validate(SNAPSHOT.projects, SNAPSHOT.limits), []);
  const findings = d.validate(
    [{ id: 'org' }, { id: 'web', parent: 'org' }, { id: 'lost', parent: 'nowhere' }],
    { project: [{ project: 'org', resource: 'servers', limit: 2n }, { project: 'web', resource: 'servers', limit: 3n }] },
    { model: 'strict-two-level' },
  );
  assert.deepEqual(findings, [
    {
      kind: 'unknown-parent',
      message: 'project "lost" names parent "nowhere", which is not in the tree',
      project: 'lost',
      parent: 'nowhere',
    },
    {
      kind: 'child-limit-exceeds-parent',
      parent: 'org',
      child: 'web',
      resource: 'servers',
      parentLimit: 2n,
      childLimit: 3n,
    },
  ]);
});

test('osloCheck answers oslo.limit\'s over-limit infos', () => {
  const check = {
    projectId: 'p',
    deltas: { servers: 1n },
    registered: [{ resource: 'servers', limit: 10n }],
    project: [{ resource: 'servers', limit: 5n }],
    usage: [{ resource: 'servers', usage: 5n }],
  };
  assert.deepEqual(d.osloCheck(check), [{ resourceName: 'servers', limit: 5n, currentUsage: 5n, delta: 1n }]);
  // No project: registered limits only.
  assert.deepEqual(d.osloCheck({ ...check, projectId: null }), []);
});

test('an Enforcer of its own reports the fuel and memory its last call used', () => {
  const enforcer = new d.Enforcer();
  assert.equal(enforcer.lastFuelUsed, null);
  assert.equal(enforcer.evaluate(SNAPSHOT, ONE).admitted, true);
  assert.ok(enforcer.lastFuelUsed > 100n, `${enforcer.lastFuelUsed}`);
  assert.ok(enforcer.memoryHighWater >= 65536);
  assert.equal(enforcer.fuel, d.DEFAULT_FUEL);
  assert.equal(enforcer.memoryLimit, d.DEFAULT_MEMORY_LIMIT);
  // Limits change from the next call on, checked as the constructor's.
  enforcer.fuel = 10;
  assert.equal(enforcer.fuel, 10n);
  assert.throws(() => d.evaluate(SNAPSHOT, ONE) && enforcer.evaluate(SNAPSHOT, ONE), { kind: 'out-of-fuel' });
  assert.throws(() => {
    enforcer.fuel = -1n;
  }, RangeError);
  assert.throws(() => {
    enforcer.memoryLimit = '1 GiB';
  }, TypeError);
});
