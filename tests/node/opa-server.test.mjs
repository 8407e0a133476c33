// The whole case corpus through OPA itself: `opa run --server` with a bundle that holds the policy module and a
// `.manifest` naming every entrypoint, queried over OPA's REST API as a client would (`POST /v1/data/<entrypoint>`
// with `{"input": <the case's input>}`). Cases with a data document first write it with OPA's Data API
// (`PUT /v1/data/<key>`, as kube-mgmt replicates objects) and remove it afterwards. Both modules run: policy.wasm
// (ABI 1.3, OPA's `opa_eval` path with its Rego value output) and policy-abi1.1.wasm (OPA's eval-context path).
// Every result must deep-equal native policy-core's answer; cases listed for `opa` / `opa-slow` in
// DIVERGENCES.yaml are not run.
//
// The `opa` binary is the one `cargo xtask` builds from the pinned module in cluster/opa (env OPA).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import opa from "@open-policy-agent/opa-wasm";
import { corpusAnswers, target } from "./support.mjs";

const cases = corpusAnswers();
const binary = process.env.OPA;
const modules = [
  ["opa", path.join(target, "policy", "policy.wasm")],
  ["opa-slow", path.join(target, "policy", "policy-abi1.1.wasm")],
];

/** One HTTP request to OPA's unix socket; resolves to `{status, body}` (body parsed when JSON). */
function call(socket, method, url, body) {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path: url, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => {
        let parsed = text;
        try {
          parsed = text ? JSON.parse(text) : undefined;
        } catch {}
        resolve({ status: res.statusCode, body: parsed });
      });
    });
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * Writes a bundle for `module` (the module as /policy.wasm, a manifest naming every entrypoint the module
 * exports, owning only the `foundry` root so the Data API may write `kubernetes` and the catalog) and starts
 * `opa run --server` on a unix socket. Resolves once OPA reports the bundle activated.
 */
async function startOpa(module) {
  const dir = mkdtempSync(path.join(tmpdir(), "foundry-opa-"));
  const bundle = path.join(dir, "bundle");
  mkdirSync(bundle);
  const bytes = readFileSync(module);
  writeFileSync(path.join(bundle, "policy.wasm"), bytes);
  const { entrypoints } = await opa.loadPolicy(bytes);
  const manifest = {
    revision: "corpus",
    roots: ["foundry"],
    wasm: Object.keys(entrypoints).map((entrypoint) => ({ entrypoint, module: "/policy.wasm" })),
  };
  writeFileSync(path.join(bundle, ".manifest"), JSON.stringify(manifest));
  const socket = path.join(dir, "opa.sock");
  const child = spawn(
    binary,
    ["run", "--server", "--skip-version-check", "--log-level", "error", "--addr", `unix://${socket}`, "--bundle", bundle],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  let exited = null;
  child.on("exit", (code) => (exited = code));
  const started = Date.now();
  for (;;) {
    if (exited !== null) throw new Error(`opa exited with ${exited}: ${stderr}`);
    if (Date.now() - started > 30000) throw new Error(`opa did not activate the bundle within 30 s: ${stderr}`);
    const health = await call(socket, "GET", "/health?bundles").catch(() => null);
    if (health?.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    socket,
    entrypoints,
    stop: () => {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const servers = {};

before(async () => {
  assert.ok(binary, "set OPA to the opa binary (cargo xtask engines and cargo xtask test build it)");
  for (const [runner, module] of modules) servers[runner] = await startOpa(module);
});

after(() => {
  for (const server of Object.values(servers)) server.stop();
});

for (const [runner] of modules) {
  test(`corpus through opa run --server (${runner})`, async () => {
    const { socket } = servers[runner];
    const failures = [];
    let ran = 0;
    for (const c of cases) {
      if (c.skip[runner]) continue;
      const keys = c.data === null ? [] : Object.keys(c.data);
      for (const key of keys) {
        const put = await call(socket, "PUT", `/v1/data/${key}`, JSON.stringify(c.data[key]));
        assert.equal(put.status, 204, `${c.name}: PUT /v1/data/${key}: ${JSON.stringify(put.body)}`);
      }
      // The case's exact input bytes, inside OPA's request document.
      const answer = await call(socket, "POST", `/v1/data/${c.operation}`, `{"input": ${c.inputText}}`);
      for (const key of keys) {
        const removed = await call(socket, "DELETE", `/v1/data/${key}`);
        assert.equal(removed.status, 204, `${c.name}: DELETE /v1/data/${key}`);
      }
      ran += 1;
      try {
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.ok(answer.body && "result" in answer.body, `no result: ${JSON.stringify(answer.body)}`);
        assert.deepStrictEqual(answer.body.result, c.answer);
      } catch (e) {
        failures.push(`${c.name}: ${e.message.slice(0, 2000)}`);
      }
    }
    assert.deepEqual(failures, []);
    console.log(`${runner}: ${ran} of ${cases.length} cases answered as natively`);
    assert.ok(ran >= cases.length - 5, `only ${ran} of ${cases.length} cases ran`);
  });
}

test("OPA serves every entrypoint of the module, and a query without input gets the policy's MissingInput", async () => {
  const { socket, entrypoints } = servers.opa;
  for (const entrypoint of Object.keys(entrypoints)) {
    const answer = await call(socket, "POST", `/v1/data/${entrypoint}`, "{}");
    assert.equal(answer.status, 200, `${entrypoint}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.result.outcome, "failure", entrypoint);
    assert.equal(answer.body.result.errors[0].code, "MissingInput", entrypoint);
  }
});

test("the Data API feeds the admission review: replicated objects allow, removing them denies", async () => {
  const c = cases.find((c) => c.name === "admission/001-instance-create-allowed");
  const { socket } = servers.opa;
  const review = () => call(socket, "POST", `/v1/data/${c.operation}`, `{"input": ${c.inputText}}`);
  assert.equal((await call(socket, "PUT", "/v1/data/kubernetes", JSON.stringify(c.data.kubernetes))).status, 204);
  assert.equal((await review()).body.result.decision.response.allowed, true);
  assert.equal((await call(socket, "DELETE", "/v1/data/kubernetes")).status, 204);
  const denied = (await review()).body.result.decision.response;
  assert.equal(denied.allowed, false);
  assert.equal(denied.status.details.causes[0].reason, "LicenseNotFound");
});
