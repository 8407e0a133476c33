// The corpus in headless Chromium, through the npm SDK's browser bundle, loading the same policy.wasm (and its
// ABI 1.1 twin) the other hosts load, served by `host-runner serve-preview`. Results must equal native answers.

import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { corpusAnswers, launchChromium, repo, servePreview, target } from "./support.mjs";

test("corpus through the npm SDK in headless Chromium, fast and eval-context paths", async (t) => {
  const cases = corpusAnswers();
  const site = mkdtempSync(path.join(tmpdir(), "foundry-engines-"));
  t.after(() => rmSync(site, { recursive: true, force: true }));
  const sdk = path.join(repo, "tests/node/node_modules/@open-policy-agent/opa-wasm/dist/opa-wasm-browser.esm.js");
  cpSync(sdk, path.join(site, "opa-wasm-browser.esm.js"));
  cpSync(path.join(repo, "tests/node/browser"), site, { recursive: true });
  for (const file of ["policy.wasm", "policy-abi1.1.wasm"]) {
    cpSync(path.join(target, "policy", file), path.join(site, file));
  }
  writeFileSync(path.join(site, "corpus.json"), JSON.stringify(cases));

  const server = await servePreview(site);
  t.after(() => server.stop());
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  await page.goto(`${server.url}engines.html`);
  await page.waitForFunction(() => window.corpusResult !== undefined, null, { timeout: 120000 });
  const report = await page.evaluate(() => window.corpusResult);

  assert.equal(report.error, undefined, report.error);
  assert.deepEqual(problems, []);
  const expected = cases.filter((c) => !c.skip.chromium).length;
  for (const [runner, minor] of [["chromium", 3], ["chromium-slow", 1]]) {
    const r = report[runner];
    assert.equal(r.minorVersion, minor, runner);
    assert.deepEqual(r.failures, [], runner);
    assert.equal(r.ran, expected, `${runner} ran every case`);
    assert.equal(r.entrypoints["foundry/license/route"], 0);
    assert.match(r.abort, /illegal entrypoint id 99/);
  }
});
