// The browser preview, end to end as an operator uses it: `host-runner serve-preview` serves the built page
// (cargo xtask build-web), headless Chromium opens it, the example platform is pre-filled, and editing the
// player count and the requested instance changes what the page shows. Every file the page shows and every
// download must be byte-identical to what `host-runner preview --out` writes for the same YAML.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { hostRunner, launchChromium, servePreview, target } from "./support.mjs";

/** Every file under `dir`, as `{relative path: content}`. */
function tree(dir, base = dir, out = {}) {
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) tree(full, base, out);
    else out[path.relative(base, full)] = readFileSync(full, "utf8");
  }
  return out;
}

/** What `host-runner preview --out` writes for the text areas' YAML. */
function cliOut(work, objects, observations) {
  const dir = mkdtempSync(path.join(work, "cli-"));
  writeFileSync(path.join(dir, "objects.yaml"), objects);
  writeFileSync(path.join(dir, "observations.yaml"), observations);
  const out = path.join(dir, "out");
  execFileSync(hostRunner(), [
    "preview", path.join(dir, "objects.yaml"),
    "--observations", path.join(dir, "observations.yaml"),
    "--out", out,
  ], { stdio: ["ignore", "ignore", "inherit"] });
  return tree(out);
}

/** The files the page shows, as `{path: content}`. */
async function pageFiles(page) {
  return page.$$eval("details[data-path]", (ds) =>
    Object.fromEntries(ds.map((d) => [d.dataset.path, d.querySelector("pre").textContent])));
}

async function settled(page) {
  await page.waitForFunction(() => document.body.dataset.state === "ready");
}

async function row(page, instance) {
  const r = page.locator(`table[data-testid=instances] tr[data-instance="${instance}"]`);
  return {
    state: await r.locator("[data-testid=state]").textContent(),
    backend: await r.locator("[data-testid=backend]").textContent(),
  };
}

test("the preview page decides the example platform, follows edits and matches the CLI byte for byte", async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), "foundry-preview-"));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  const server = await servePreview(path.join(target, "web"));
  t.after(() => server.stop());
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1500, height: 1250 });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));

  await page.goto(server.url);
  await settled(page);
  const objects = () => page.inputValue("[data-testid=objects]");
  const observations = () => page.inputValue("[data-testid=observations]");

  // The example platform: a switch to campaign-beta held back by three players on campaign-alpha.
  assert.equal(await page.textContent("[data-testid=active-instance]"), "campaign-alpha");
  assert.equal(await page.textContent("[data-testid=desired-instance]"), "campaign-beta");
  assert.match(await page.textContent("[data-testid=active-reason]"), /^KeptWhileSwitchBlocked/);
  assert.deepEqual(await row(page, "campaign-alpha"), { state: "active", backend: "tabletop/foundry-campaign-alpha:80" });
  assert.deepEqual(await row(page, "campaign-beta"), { state: "standby", backend: "foundry-vtt/foundry-standby-page:80" });
  assert.deepEqual(await page.$$eval("[data-testid=warnings] li", (l) => l.map((i) => i.dataset.code)),
    ["SwitchBlockedPlayersConnected"]);
  assert.match(await page.textContent("[data-testid=warnings]"), /3 players are connected to `campaign-alpha`/);
  assert.equal(await page.locator("svg[data-testid=diagram] g[data-state=active]").getAttribute("data-instance"),
    "campaign-alpha");
  const shown = await pageFiles(page);
  const route = shown["tabletop/foundrylicenses/dungeons-guild/output/httproute-campaign-alpha.yaml"];
  assert.match(route ?? "", /name: foundry-campaign-alpha\n/);
  // The workloads are shown too, with what their instance workflows write.
  assert.equal(await page.textContent("table[data-testid=workloads] tr[data-workload=campaign-beta] [data-testid=foundry]"), "13.351");
  assert.match(shown["tabletop/foundryinstances/campaign-beta/output/copy-worlds-job.yaml"] ?? "", /kind: Job\n/);
  assert.deepEqual(shown, cliOut(work, await objects(), await observations()));
  mkdirSync(path.join(target, "screenshots"), { recursive: true });
  await page.screenshot({ path: path.join(target, "screenshots", "preview.png"), fullPage: true });

  // One file's download, and the whole output directory as a ZIP.
  await page.click("details[data-path$='status.yaml'] summary");
  const [one] = await Promise.all([page.waitForEvent("download"),
    page.click("details[data-path$='status.yaml'] button[data-download]")]);
  assert.equal(one.suggestedFilename(), "status.yaml");
  assert.equal(readFileSync(await one.path(), "utf8"), shown["tabletop/foundrylicenses/dungeons-guild/metadata/status.yaml"]);
  const [all] = await Promise.all([page.waitForEvent("download"), page.click("[data-testid=download-all]")]);
  const zipPath = path.join(work, "all.zip");
  await all.saveAs(zipPath);
  const unzipped = path.join(work, "unzipped");
  execFileSync("python3", ["-m", "zipfile", "-e", zipPath, unzipped]);
  assert.deepEqual(tree(unzipped), shown);

  // The players leave campaign-alpha: the switch happens.
  await page.fill("[data-testid=observations]", (await observations()).replace("connected: 3", "connected: 0"));
  await settled(page);
  assert.equal(await page.textContent("[data-testid=active-instance]"), "campaign-beta");
  assert.deepEqual(await row(page, "campaign-alpha"), { state: "standby", backend: "foundry-vtt/foundry-standby-page:80" });
  assert.deepEqual(await row(page, "campaign-beta"), { state: "active", backend: "tabletop/foundry-campaign-beta:80" });
  assert.equal(await page.locator("[data-testid=no-warnings]").count(), 1);
  assert.deepEqual(await pageFiles(page), cliOut(work, await objects(), await observations()));

  // The owner asks for test-drive instead. The gate is the current instance's (status: campaign-alpha), which has
  // no players now, so the switch passes.
  await page.fill("[data-testid=objects]",
    (await objects()).replace("activeInstanceName: campaign-beta", "activeInstanceName: test-drive"));
  await settled(page);
  assert.equal(await page.textContent("[data-testid=active-instance]"), "test-drive");
  assert.equal(await page.textContent("[data-testid=desired-instance]"), "test-drive");
  assert.deepEqual(await row(page, "test-drive"), { state: "active", backend: "tabletop/foundry-test-drive:80" });
  assert.deepEqual(await pageFiles(page), cliOut(work, await objects(), await observations()));
  await page.screenshot({ path: path.join(target, "screenshots", "preview-switched.png"), fullPage: true });

  // A refused input shows the policy's error codes instead of a decision.
  await page.fill("[data-testid=objects]", (await objects()).replace("switchMode: block", "switchMode: sometimes"));
  await settled(page);
  assert.equal(await page.isVisible("[data-testid=errors]"), true);
  assert.deepEqual(await page.$$eval("[data-testid=errors] li", (l) => l.map((i) => i.dataset.code)), ["InvalidField"]);
  assert.equal(await page.locator(".license").count(), 0);

  // Nothing left the page but requests for its own files.
  assert.deepEqual(problems, []);
  assert.ok(requests.every((u) => u.startsWith(server.url) || u.startsWith("blob:")), requests.join("\n"));
});
