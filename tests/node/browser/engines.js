// Runs the corpus through OPA's npm SDK browser bundle (the same `.wasm` files the other hosts run) and leaves
// the outcome in `window.corpusResult` for the test to read. Comparison with native answers happens here, on
// parsed values, exactly as in Node.

import opa from "./opa-wasm-browser.esm.js";

function rawJson(text) {
  return new TextEncoder().encode(text).buffer;
}

function same(a, b) {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && same(a[k], b[k]));
}

async function run() {
  const cases = await (await fetch("corpus.json")).json();
  const report = {};
  for (const [runner, file] of [["chromium", "policy.wasm"], ["chromium-slow", "policy-abi1.1.wasm"]]) {
    // Streaming compilation from the response, as a page would load it.
    const policy = await opa.loadPolicy(fetch(file));
    const failures = [];
    let ran = 0;
    for (const c of cases) {
      if (c.skip.chromium) continue;
      policy.setData(c.data === null ? undefined : c.data);
      try {
        const result = policy.evaluate(rawJson(c.inputText), c.operation);
        ran += 1;
        if (result.length !== 1 || !same(result[0].result, c.answer)) {
          failures.push(`${c.name}: ${JSON.stringify(result).slice(0, 500)}`);
        }
      } catch (e) {
        failures.push(`${c.name}: threw ${e}`);
      }
    }
    let abort = "";
    try {
      policy.evaluate({}, 99);
    } catch (e) {
      abort = String(e);
    }
    report[runner] = { ran, failures, minorVersion: policy.minorVersion, entrypoints: policy.entrypoints, abort };
  }
  return report;
}

run().then(
  (report) => {
    window.corpusResult = report;
    document.getElementById("status").textContent = "done";
  },
  (e) => {
    window.corpusResult = { error: String(e) };
    document.getElementById("status").textContent = `failed: ${e}`;
  },
);
