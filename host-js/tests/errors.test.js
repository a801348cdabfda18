// Error mapping: every kind of the WIT's invalid-input catalogue arrives as
// an InvalidInput with that kind, the fields of the case's payload record
// and the message the component sent, verbatim; the classes form one
// family; no payload field can shadow a property every error has.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import * as d from '../src/index.js';
import { Instance, isComponentError } from '../src/runtime.js';
import { cases, operate } from './conformance_runner.js';

const camel = (name) => name.replace(/^%/, '').replace(/-(\w)/g, (_, c) => c.toUpperCase());

/** The WIT's invalid-input cases: kind -> the payload record's fields, as jco names them. */
function invalidInputCases() {
  const wit = readFileSync(new URL('../../wit/delimiter.wit', import.meta.url), 'utf8').replace(/\/\/[^\n]*/g, '');
  const records = {};
  for (const [, name, body] of wit.matchAll(/\brecord\s+(%?[\w-]+)\s*\{([^{}]*)\}/g)) {
    records[name] = body
      .split(',')
      .map((field) => field.trim())
      .filter(Boolean)
      .map((field) => camel(field.split(':')[0].trim()));
  }
  const variant = /\bvariant\s+invalid-input\s*\{([^{}]*)\}/.exec(wit)[1];
  const out = {};
  for (const item of variant.split(',').map((x) => x.trim()).filter(Boolean)) {
    const [, kind, payload] = /^([\w-]+)\((%?[\w-]+)\)$/.exec(item) ?? [null, item, null];
    out[kind] = records[payload] ?? null;
  }
  return out;
}

const KINDS = invalidInputCases();

// What every Error (or every QuotaError) has already: a payload field of
// one of these names would overwrite it.
const RESERVED = ['name', 'message', 'stack', 'cause', 'kind', 'fields', 'constructor'];

// What the component sent with each error, recorded under the host.
let sent = [];
const call = Instance.prototype.call;
before(() => {
  Instance.prototype.call = function recorded(fuel, fn) {
    try {
      return call.call(this, fuel, fn);
    } catch (e) {
      if (isComponentError(e)) sent.push(e.payload);
      throw e;
    }
  };
});
after(() => {
  Instance.prototype.call = call;
});

test('the WIT has the 21 input error kinds the vectors name, each with a record payload', () => {
  assert.equal(Object.keys(KINDS).length, 21);
  for (const [kind, fields] of Object.entries(KINDS)) {
    assert.ok(Array.isArray(fields) && fields.length > 0, `${kind}: its payload is not a record`);
    const clash = fields.filter((f) => RESERVED.includes(f));
    assert.deepEqual(clash, [], `${kind}: payload fields shadow an error's own properties`);
  }
});

test('every input error kind arrives as an InvalidInput: its kind, its fields, the component\'s message', () => {
  const seen = new Set();
  for (const [identity, c] of cases()) {
    if (!(c.want_error in KINDS) || seen.has(c.want_error)) continue;
    seen.add(c.want_error);
    sent = [];
    let error;
    try {
      operate(c);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof d.InvalidInput, `${identity}: ${error}`);
    assert.ok(error instanceof d.QuotaError && error instanceof Error);
    assert.equal(error.kind, c.want_error, identity);
    const payload = sent.at(-1);
    // A consume's input error comes as consume-error.invalid.
    const invalid = payload.tag === 'invalid' ? payload.val : payload;
    assert.equal(error.message, invalid.message, identity);
    assert.ok(error.message.length > 0);
    assert.deepEqual(Object.keys(error.fields).sort(), [...KINDS[c.want_error]].sort(), identity);
    for (const [field, value] of Object.entries(error.fields)) {
      assert.equal(error[field], value, `${identity}: .${field}`);
      assert.equal(value, invalid.input.val[field], `${identity}: .${field}`);
    }
  }
  assert.deepEqual([...seen].sort(), Object.keys(KINDS).sort(), 'a kind no vector produces');
});

test('the messages are the core\'s own text', () => {
  const snapshot = { projects: [{ id: 'a' }] };
  assert.throws(() => d.evaluate(snapshot, { project: 'zz', deltas: { r: 1n } }), {
    name: 'InvalidInput',
    message: 'project "zz" is not in the tree',
  });
  assert.throws(() => d.evaluate(snapshot, { project: 'a', deltas: { '': 1n } }), {
    kind: 'empty-id',
    what: 'resource',
    message: 'empty resource id',
  });
  assert.throws(() => d.parseModel('hierarchical'), {
    kind: 'unknown-model',
    model: 'hierarchical',
    message: 'unknown enforcement model "hierarchical" (expected flat, strict-two-level or nested)',
  });
});

test('one family: every class is a QuotaError, named after itself, with a stable kind', () => {
  const errors = [
    [new d.InvalidInput('cycle', 'project "a" is its own ancestor', { project: 'a' }), 'cycle'],
    [new d.OverLimit([], 1), 'over-limit'],
    [new d.RetriesExhausted(5), 'retries-exhausted'],
    [new d.StorageError('down'), 'storage'],
    [new d.GuestFault('out-of-fuel', 'all fuel consumed'), 'out-of-fuel'],
  ];
  for (const [error, kind] of errors) {
    assert.ok(error instanceof d.QuotaError && error instanceof Error);
    assert.equal(error.kind, kind);
    assert.equal(error.name, error.constructor.name);
    assert.ok(String(error).startsWith(`${error.constructor.name}: `), String(error));
  }
  assert.equal(new d.InvalidInput('cycle', 'm', { project: 'a' }).project, 'a');
  assert.equal(new d.RetriesExhausted(5).attempts, 5);
});
