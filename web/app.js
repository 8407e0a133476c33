// The browser preview: reads the text areas, asks the policy module (the wasm-bindgen build of policy-wasm) for
// the platform preview, and shows the answer. It decides nothing itself: the active instance, the backends, the
// warnings and every file's bytes come from the module, exactly as `host-runner preview --out` writes them.
// User text reaches the page only through textContent and attributes, never as markup.

import init, { previewYaml } from "./pkg/policy_wasm.js";
import { zip } from "./zip.js";

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

/** Creates an element with attributes and children (strings become text nodes). */
function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** The time the CLI would take from its clock when the observations give none. */
function clock() {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function backendText(backend) {
  return `${backend.namespace}/${backend.name}:${backend.port}`;
}

function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Every file `--out DIR` writes for one object's workflow, with its path under DIR. */
function outFiles(plural, object, d) {
  const base = `${object.namespace}/${plural}/${object.name}`;
  return [
    ...d.files.map((f) => ({ path: `${base}/output/${f.path}`, content: f.content })),
    { path: `${base}/metadata/status.yaml`, content: d.statusYaml },
  ];
}

/** The instance workloads of a license: version, storage, volume modes and state. */
function workloadTable(instances) {
  const text = (v) => (v === null || v === undefined ? "-" : String(v));
  return el(
    "table",
    { "data-testid": "workloads" },
    el("thead", {}, el("tr", {}, ["Workload", "Foundry", "Storage", "Worlds", "Modules", "State"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      instances.map((i) => {
        const s = i.status;
        return el("tr", { "data-workload": i.instance.name },
          el("td", {}, i.instance.name),
          el("td", { "data-testid": "foundry" }, text(s.resolvedVersion)),
          el("td", {}, text(s.storage?.location)),
          el("td", {}, text(s.volumes?.worlds?.mode)),
          el("td", {}, text(s.volumes?.modules?.mode)),
          el("td", {}, text(s.conditions?.[0]?.reason)),
        );
      }),
    ),
  );
}

/** Instances → routes → backends, one row per instance. */
function diagram(d) {
  const rowHeight = 38;
  const rows = Math.max(d.instances.length, 1);
  const backends = [...new Map(d.instances.map((i) => [backendText(i.backend), i])).keys()];
  const height = Math.max(rows, backends.length) * rowHeight + 40;
  const svg = el("svg:svg", {
    viewBox: `0 0 900 ${height}`,
    role: "img",
    "aria-label": `routing of license ${d.license.name}`,
    "data-testid": "diagram",
    class: "diagram",
  });
  svg.append(el("svg:text", { x: 10, y: 16, class: "head" }, "instance (hostname)"));
  svg.append(el("svg:text", { x: 520, y: 16, class: "head" }, "backend Service"));
  const backendY = new Map(backends.map((b, i) => [b, 30 + i * rowHeight]));
  backends.forEach((b) => {
    const y = backendY.get(b);
    const standby = d.instances.some((i) => backendText(i.backend) === b && i.state === "standby");
    svg.append(el("svg:rect", { x: 520, y, width: 370, height: 28, rx: 5, class: standby ? "standby" : "active" }));
    svg.append(el("svg:text", { x: 530, y: y + 18 }, `${standby ? "standby page " : ""}${b}`));
  });
  d.instances.forEach((inst, i) => {
    const y = 30 + i * rowHeight;
    const cls = inst.state === "active" ? "active" : "standby";
    const group = el("svg:g", { "data-instance": inst.name, "data-state": inst.state });
    group.append(el("svg:rect", { x: 10, y, width: 380, height: 28, rx: 5, class: cls }));
    group.append(el("svg:text", { x: 20, y: y + 18 }, `${inst.name} (${inst.hostname})`));
    const to = backendY.get(backendText(inst.backend)) + 14;
    group.append(el("svg:path", { d: `M390 ${y + 14} C 460 ${y + 14}, 450 ${to}, 520 ${to}`, class: `edge ${cls}` }));
    svg.append(group);
  });
  if (d.instances.length === 0) svg.append(el("svg:text", { x: 10, y: 48 }, "(no instances)"));
  return svg;
}

function licenseSection(d, workloads) {
  const active = d.instances.find((i) => i.state === "active");
  const summary = el(
    "p",
    { class: "summary" },
    "Active: ",
    el("strong", { "data-testid": "active-instance" }, d.activeInstance || "(none)"),
    " — requested: ",
    el("span", { "data-testid": "desired-instance" }, d.desiredInstance || "(none)"),
  );
  const why = el("p", { class: "why", "data-testid": "active-reason" },
    active ? `${active.reason}: ${active.message}` : "No instance routes to its own Service.");

  const table = el(
    "table",
    { "data-testid": "instances" },
    el("thead", {}, el("tr", {}, ["Instance", "State", "Backend", "Hostname", "Why"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      d.instances.map((i) =>
        el("tr", { "data-instance": i.name, class: i.state },
          el("td", {}, i.name),
          el("td", { "data-testid": "state" }, i.state),
          el("td", { "data-testid": "backend" }, backendText(i.backend)),
          el("td", {}, i.hostname),
          el("td", { title: i.message }, i.reason),
        )
      ),
    ),
  );

  const warnings = d.warnings.length === 0
    ? el("p", { class: "muted", "data-testid": "no-warnings" }, "No warnings.")
    : el("ul", { class: "warnings", "data-testid": "warnings" },
      d.warnings.map((w) => el("li", { "data-code": w.code }, el("code", {}, w.code), " ", w.message)));

  const mine = workloads.filter((w) => w.instance.namespace === d.license.namespace && w.status.license === d.license.name);
  const files = [
    ...outFiles("foundrylicenses", d.license, d),
    ...mine.flatMap((w) => outFiles("foundryinstances", w.instance, w)),
  ];
  const fileList = el(
    "div",
    { class: "files", "data-testid": "files" },
    files.map((f) =>
      el("details", { "data-path": f.path },
        el("summary", {}, f.path, " ",
          el("button", { type: "button", class: "link", "data-download": f.path }, "download")),
        el("pre", {}, f.content))
    ),
  );
  fileList.addEventListener("click", (event) => {
    const path = event.target?.getAttribute?.("data-download");
    if (!path) return;
    event.preventDefault();
    const file = files.find((f) => f.path === path);
    download(path.split("/").pop(), new Blob([file.content], { type: "application/yaml" }));
  });
  const all = el("button", { type: "button", "data-testid": "download-all" },
    `Download all ${files.length} files (.zip)`);
  all.addEventListener("click", () => download(`${d.license.namespace}-${d.license.name}.zip`, zip(files)));

  return el(
    "section",
    { class: "license", "data-license": `${d.license.namespace}/${d.license.name}` },
    el("h2", {}, `License ${d.license.namespace}/${d.license.name}`),
    summary,
    why,
    diagram(d),
    table,
    el("h3", {}, "Warnings"),
    warnings,
    el("h3", {}, "Workloads"),
    workloadTable(mine),
    el("h3", {}, "What the pipeline writes ", all),
    fileList,
  );
}

function show(answer) {
  const errors = $("errors");
  const licenses = $("licenses");
  const notes = $("notes");
  // Keep open file views open across edits.
  const open = new Set([...document.querySelectorAll("details[open]")].map((d) => d.dataset.path));
  licenses.replaceChildren();
  errors.replaceChildren();
  notes.replaceChildren();
  errors.hidden = answer.outcome !== "failure";
  notes.hidden = true;
  if (answer.outcome === "failure") {
    errors.append(
      el("h2", {}, "The input is refused"),
      el("ul", {}, answer.errors.map((e) =>
        el("li", { "data-code": e.code },
          el("code", {}, e.code), " ", e.message,
          e.path ? el("span", { class: "muted" }, ` (field ${e.path})`) : null,
          el("div", { class: "help" }, e.help))
      )),
    );
    return;
  }
  licenses.append(...answer.decision.licenses.map((d) => licenseSection(d, answer.decision.instances)));
  for (const d of document.querySelectorAll("details")) d.open = open.has(d.dataset.path);
  if (answer.decision.notes.length > 0) {
    notes.hidden = false;
    notes.append(el("h3", {}, "Notes"),
      el("ul", {}, answer.decision.notes.map((n) => el("li", { "data-code": n.code }, el("code", {}, n.code), " ", n.message))));
  }
}

function update() {
  const answer = JSON.parse(previewYaml($("objects").value, $("observations").value, clock()));
  show(answer);
  document.body.dataset.state = "ready";
}

async function loadExample() {
  const text = async (name) => (await fetch(`examples/${name}`)).text();
  const [license, instances, observations] = await Promise.all(
    ["license.yaml", "instances.yaml", "observations.yaml"].map(text),
  );
  $("objects").value = `${license.trimEnd()}\n---\n${instances}`;
  $("observations").value = observations;
}

async function main() {
  await init();
  $("engine").textContent = "policy module loaded; decisions update as you type";
  await loadExample();
  update();
  let timer;
  for (const id of ["objects", "observations"]) {
    $(id).addEventListener("input", () => {
      document.body.dataset.state = "editing";
      clearTimeout(timer);
      timer = setTimeout(update, 120);
    });
  }
  $("reset").addEventListener("click", async () => {
    await loadExample();
    update();
  });
}

main().catch((e) => {
  $("engine").textContent = `the policy module could not be loaded: ${e}`;
  document.body.dataset.state = "broken";
});
