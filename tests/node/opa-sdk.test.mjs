// The whole case corpus through OPA's official npm SDK (`@open-policy-agent/opa-wasm`) in Node, on both of its
// evaluation paths: the ABI 1.2+ `opa_eval` fast path (policy.wasm) and the eval-context path it takes for
// ABI 1.1 modules (policy-abi1.1.wasm, the same code declaring 1.1). Every result must deep-equal native
// policy-core's answer. Then the ABI's edges: errors, undefined and null input, data, heap resets, raw exports.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import opa from "@open-policy-agent/opa-wasm";
import { corpusAnswers, rawJson, target } from "./support.mjs";

const { loadPolicy, loadPolicySync } = opa;

const cases = corpusAnswers();
const fast = readFileSync(path.join(target, "policy", "policy.wasm"));
const slow = readFileSync(path.join(target, "policy", "policy-abi1.1.wasm"));

/** Runs every case not listed for `runner` in DIVERGENCES.yaml; returns the failures and the count run. */
function runCorpus(policy, runner) {
  const failures = [];
  let ran = 0;
  for (const c of cases) {
    if (c.skip[runner]) continue;
    // `undefined` data is OPA's undefined `data`, as natively; the SDK's own default would be `{}`.
    policy.setData(c.data === null ? undefined : c.data);
    let result;
    try {
      result = policy.evaluate(rawJson(c.inputText), c.operation);
    } catch (e) {
      failures.push(`${c.name}: threw ${e}`);
      continue;
    }
    ran += 1;
    try {
      assert.equal(result.length, 1, "one result");
      assert.deepStrictEqual(result[0].result, c.answer);
    } catch (e) {
      failures.push(`${c.name}: ${e.message.slice(0, 2000)}`);
    }
  }
  return { failures, ran };
}

for (const [runner, bytes, minor] of [["npm", fast, 3], ["npm-slow", slow, 1]]) {
  test(`corpus through the npm SDK (${runner}, ABI 1.${minor})`, async () => {
    const policy = await loadPolicy(bytes);
    assert.equal(policy.minorVersion, minor);
    const { failures, ran } = runCorpus(policy, runner);
    assert.deepEqual(failures, []);
    assert.ok(ran >= cases.length - 5, `only ${ran} of ${cases.length} cases ran`);
  });
}

test("entrypoints: route at id 0, every operation of the corpus, ids dense", async () => {
  const policy = loadPolicySync(fast);
  const ids = Object.values(policy.entrypoints).sort((a, b) => a - b);
  assert.equal(policy.entrypoints["foundry/license/route"], 0);
  assert.deepEqual(ids, ids.map((_, i) => i));
  for (const op of new Set(cases.map((c) => c.operation))) {
    assert.ok(op in policy.entrypoints, `${op} is an entrypoint`);
  }
  // Numeric ids evaluate the same operation as names.
  const c = cases.find((c) => c.operation === "foundry/platform/preview" && !c.skip.npm);
  const byId = policy.evaluate(rawJson(c.inputText), policy.entrypoints[c.operation]);
  assert.deepStrictEqual(byId[0].result, c.answer);
});

for (const [runner, bytes] of [["fast path", fast], ["eval-context path", slow]]) {
  test(`errors surface with their codes, never as an empty result (${runner})`, async () => {
    const policy = await loadPolicy(bytes);
    assert.throws(() => policy.evaluate({}, 99), /illegal entrypoint id 99/);
    assert.throws(() => policy.evaluate({}, -1), /illegal entrypoint id -1/);
    assert.throws(() => policy.evaluate({}, "foundry/no/such"), /not valid/);
    const missing = (input) => policy.evaluate(input, "foundry/license/route")[0].result;
    for (const input of [undefined, null]) {
      const answer = missing(input);
      assert.equal(answer.outcome, "failure");
      assert.equal(answer.errors[0].code, "MissingInput", `input ${input}`);
    }
    const wrongShape = missing({ licence: {} });
    assert.equal(wrongShape.errors[0].code, "InvalidJson");
    assert.match(wrongShape.errors[0].message, /unknown field `licence`/);
    // The policy reads the bytes the host sent, on both paths: a duplicate key is refused as it is natively,
    // not silently resolved by a parse and re-serialisation inside the module.
    const duplicate = missing(rawJson("{\"observations\": {}, \"observations\": {}}"));
    assert.equal(duplicate.errors[0].code, "InvalidJson");
    assert.match(duplicate.errors[0].message, /duplicate field `observations`/);
    assert.throws(() => policy.setData(rawJson("{\"kubernetes\":")), /failed to parse json value/);
  });
}

test("invalid JSON input is a failure answer on the fast path, a refusal of the SDK on the slow one", async () => {
  const fastPolicy = await loadPolicy(fast);
  const answer = fastPolicy.evaluate(rawJson("{\"license\": "), "foundry/license/route")[0].result;
  assert.equal(answer.outcome, "failure");
  assert.equal(answer.errors[0].code, "InvalidJson");
  const slowPolicy = await loadPolicy(slow);
  assert.throws(() => slowPolicy.evaluate(rawJson("{\"license\": "), "foundry/license/route"), /failed to parse json/);
});

test("data is what the admission entrypoint reads; a later setData replaces it", async () => {
  const c = cases.find((c) => c.name === "admission/001-instance-create-allowed");
  const policy = await loadPolicy(fast);
  policy.setData(c.data);
  assert.equal(policy.evaluate(rawJson(c.inputText), c.operation)[0].result.decision.response.allowed, true);
  policy.setData({});
  const denied = policy.evaluate(rawJson(c.inputText), c.operation)[0].result.decision.response;
  assert.equal(denied.allowed, false);
  assert.equal(denied.status.details.causes[0].reason, "LicenseNotFound");
});

test("the host's heap resets reclaim every evaluation: memory stays flat, answers stay identical", async () => {
  const c = cases.find((c) => c.operation === "foundry/platform/preview" && !c.skip.npm);
  for (const bytes of [fast, slow]) {
    const policy = await loadPolicy(bytes);
    const first = JSON.stringify(policy.evaluate(rawJson(c.inputText), c.operation));
    const size = policy.mem.buffer.byteLength;
    for (let i = 0; i < 2000; i++) {
      assert.equal(JSON.stringify(policy.evaluate(rawJson(c.inputText), c.operation)), first);
    }
    assert.equal(policy.mem.buffer.byteLength, size);
  }
});

test("large inputs grow memory from the SDK's default 5 pages", async () => {
  const policy = await loadPolicy(fast);
  const instances = Array.from({ length: 3000 }, (_, i) => ({
    apiVersion: "foundry.platform/v1alpha1",
    kind: "FoundryInstance",
    metadata: { name: `campaign-${i}`, namespace: "tabletop" },
    spec: { licenseRef: { name: "guild" } },
    // Configured for its spec: only such an instance may become active.
    status: { conditions: [{ type: "Ready", status: "True", reason: "Configured" }] },
  }));
  const license = {
    apiVersion: "foundry.platform/v1alpha1",
    kind: "FoundryLicense",
    metadata: { name: "guild", namespace: "tabletop" },
    spec: {
      licenseSecretRef: { name: "s", key: "k" },
      activeInstanceName: "campaign-7",
      gateway: { baseDomain: "dnd.example.com" },
    },
  };
  const answer = policy.evaluate(
    { license, instances, now: "2026-11-22T18:30:00Z" },
    "foundry/license/route",
  )[0].result;
  assert.equal(answer.outcome, "success");
  assert.equal(answer.decision.activeInstance, "campaign-7");
  assert.equal(answer.decision.instances.length, 3000);
});

test("raw exports: json_parse ignores a trailing NUL, add_path and remove_path follow OPA's C runtime", async () => {
  const policy = await loadPolicy(fast);
  const x = policy.wasmInstance.exports;
  const mem = () => new Uint8Array(policy.mem.buffer);
  const load = (text) => {
    const bytes = new TextEncoder().encode(text);
    const addr = x.opa_malloc(bytes.length);
    mem().set(bytes, addr);
    return x.opa_json_parse(addr, bytes.length);
  };
  const dump = (value) => {
    const addr = x.opa_json_dump(value);
    const m = mem();
    let end = addr;
    while (m[end] !== 0) end++;
    return JSON.parse(new TextDecoder().decode(m.subarray(addr, end)));
  };
  assert.deepEqual(dump(load("{\"a\":1}\0")), { a: 1 });
  assert.equal(load("{\"a\":"), 0);
  assert.deepEqual(dump(x.builtins()), {});

  const base = load("{\"a\":{\"b\":1}}");
  assert.equal(x.opa_value_add_path(base, load("[\"x\",\"y\"]"), load("true")), 0);
  assert.equal(x.opa_value_add_path(base, load("[\"a\",\"b\"]"), load("2")), 0);
  assert.equal(x.opa_value_add_path(base, load("[\"a\",\"b\",\"c\"]"), load("3")), 2);
  assert.equal(x.opa_value_add_path(base, load("[]"), load("3")), 3);
  assert.deepEqual(dump(base), { a: { b: 2 }, x: { y: true } });
  assert.equal(x.opa_value_remove_path(base, load("[\"x\",\"y\"]")), 0);
  assert.equal(x.opa_value_remove_path(base, load("[\"nope\",\"y\"]")), 0);
  assert.equal(x.opa_value_remove_path(base, load("[]")), 3);
  assert.deepEqual(dump(base), { a: { b: 2 }, x: {} });
});
