// Drives the standby page in Debian's headless Chromium through playwright-core, as a visitor would, and prints
// what the visitor saw as one JSON object. host-runner/tests/browser.rs starts the service and the Kubernetes API
// stand-in, runs this script, and checks both what it prints and what the API stand-in recorded.
//
// Usage: node standby.mjs <plan.json>
// plan: {"chromium": "/usr/bin/chromium", "port": 8080, "steps": [
//   {"name": "...", "host": "beta.dnd.example.com", "js": true, "press": "mouse|keyboard|none", "screenshot": "x.png"}]}
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const browser = await chromium.launch({
  executablePath: plan.chromium,
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    // Every platform hostname resolves to the service under test; nothing leaves the machine.
    `--host-resolver-rules=MAP * 127.0.0.1:${plan.port}`,
  ],
});
const withScript = await browser.newContext({ viewport: { width: 900, height: 900 } });
// A browser without JavaScript: it must still read the page and post the form.
const withoutScript = await browser.newContext({ viewport: { width: 900, height: 900 }, javaScriptEnabled: false });
const results = {};
try {
  for (const step of plan.steps) {
    const page = await (step.js ? withScript : withoutScript).newPage();
    const consoleErrors = [];
    page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
    page.on("pageerror", (e) => consoleErrors.push(String(e)));
    const response = await page.goto(`http://${step.host}/`, { waitUntil: "load" });
    const seen = await describe(page);
    seen.status = response ? response.status() : 0;
    seen.consoleErrors = consoleErrors;
    if (step.screenshot) await page.screenshot({ path: step.screenshot, fullPage: true });
    if (step.press && step.press !== "none") {
      if (step.press === "keyboard") {
        // Tab to the button the way a keyboard user would, then press Enter.
        for (let i = 0; i < 20; i++) {
          await page.keyboard.press("Tab");
          if (await page.evaluate(() => document.activeElement && document.activeElement.id === "activate")) break;
        }
        seen.buttonFocused = await page.evaluate(() => document.activeElement && document.activeElement.id === "activate");
        await page.keyboard.press("Enter");
      } else {
        await page.click("#activate");
      }
      if (step.js) {
        await page.waitForFunction(() => {
          const r = document.getElementById("result");
          return r && r.textContent && r.textContent !== "Sending…";
        }, null, { timeout: 10000 });
      } else {
        await page.waitForLoadState("load");
        await page.waitForSelector("#result", { timeout: 10000 });
      }
      seen.after = await describe(page);
      if (step.screenshotAfter) await page.screenshot({ path: step.screenshotAfter, fullPage: true });
    }
    results[step.name] = seen;
    await page.close();
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results) + "\n");

async function describe(page) {
  return page.evaluate(() => {
    const text = (sel) => { const e = document.querySelector(sel); return e ? e.innerText.trim() : null; };
    const button = document.getElementById("activate");
    return {
      url: location.href,
      title: document.title,
      lang: document.documentElement.lang,
      h1: text("h1"),
      mainText: text("main"),
      bodyText: document.body ? document.body.innerText : "",
      landmarks: {
        main: document.querySelectorAll("main").length,
        header: document.querySelectorAll("header").length,
        footer: document.querySelectorAll("footer").length,
      },
      hasButton: !!button,
      buttonName: button ? button.innerText.trim() : null,
      buttonDisabled: button ? button.disabled : null,
      result: text("#result"),
      stylesheetApplied: getComputedStyle(document.body).backgroundColor,
    };
  });
}
