// Shared by the Node tests: where the built artifacts are, the native answers, the preview server and Chromium.
// The artifacts are built by `cargo xtask` (build-wasm, build-web, corpus answers) before these tests run.

import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const target = process.env.FOUNDRY_TARGET_DIR ?? path.join(repo, "target");

/** Every corpus case with native policy-core's answer (written by policy-core's `corpus_answers` example). */
export function corpusAnswers() {
  return JSON.parse(readFileSync(path.join(target, "corpus-answers", "index.json"), "utf8"));
}

/** The exact bytes of a text, as an ArrayBuffer: the SDK then passes them to the module unchanged. */
export function rawJson(text) {
  const bytes = new TextEncoder().encode(text);
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
}

/** The `host-runner` binary `cargo xtask` built. */
export function hostRunner() {
  const bin = process.env.HOST_RUNNER;
  if (!bin) throw new Error("set HOST_RUNNER to the host-runner binary (cargo xtask does)");
  return bin;
}

/**
 * Starts `host-runner serve-preview --dir DIR` on a free loopback port and resolves to its base URL once it
 * prints the address it serves.
 */
export function servePreview(dir) {
  const child = spawn(hostRunner(), ["serve-preview", "--dir", dir, "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`serve-preview did not start: ${out}`)), 15000);
    child.on("exit", (code) => reject(new Error(`serve-preview exited with ${code}: ${out}`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const match = out.match(/http:\/\/127\.0\.0\.1:\d+\//);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[0], stop: () => child.kill() });
      }
    });
  });
}

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Debian's Chromium through playwright-core, with a fresh profile that is removed on close. */
export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(path.join(tmpdir(), "foundry-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
