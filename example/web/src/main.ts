// The corsgate demo page: every browser client calls greet.v1.GreetService on
// another origin, and the table shows what the script could read.
//
// Tests drive the page through window.corsgateTest (see TestAPI) and read the
// table through stable ids and data attributes:
//   #target-dropin, #target-gateway (radios), #dropin-url, #gateway-url,
//   #name, #greeting, #count, #authorization, #request-id, #credentials,
//   #run-all, #clear, body[data-state=idle|running|done],
//   tr[data-client][data-case][data-state=idle|running|ok|error|unsupported].

import { run } from "./calls/run";
import { clientIds, clientLabels, unsupportedReason } from "./calls/types";
import type { ClientId, MethodName, RunOptions, RunResult } from "./calls/types";

/** A row of the table: a method called with a purpose. */
interface Case {
  id: string;
  method: MethodName;
  label: string;
  /** Greet with an empty name fails with INVALID_ARGUMENT and a detail. */
  emptyName?: boolean;
}

const cases: Case[] = [
  { id: "greet", method: "Greet", label: "Greet" },
  { id: "greet-error", method: "Greet", label: "Greet (empty name: error)", emptyName: true },
  { id: "set-greeting", method: "SetGreeting", label: "SetGreeting" },
  { id: "greet-stream", method: "GreetStream", label: "GreetStream" },
  { id: "greet-many", method: "GreetMany", label: "GreetMany" },
  { id: "chat", method: "Chat", label: "Chat" },
  { id: "reset-greetings", method: "ResetGreetings", label: "ResetGreetings (browser-barred)" },
];

/** TestAPI is window.corsgateTest. */
export interface TestAPI {
  ready: true;
  clients: readonly ClientId[];
  cases: readonly Case[];
  /** Makes one call without touching the page. */
  run(opts: RunOptions): Promise<RunResult>;
  /** Clicks "Run all" and resolves when the table is full. */
  runAll(): Promise<RunResult[]>;
  /** The target the page calls now. */
  target(): string;
}

declare global {
  interface Window {
    corsgateTest: TestAPI;
  }
}

function el<T extends HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) {
    throw new Error(`#${id} is missing from the page`);
  }
  return e as T;
}

function input(id: string): HTMLInputElement {
  return el<HTMLInputElement>(id);
}

function node(tag: string, attrs: Record<string, string> = {}, text = ""): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    e.setAttribute(k, v);
  }
  if (text) {
    e.textContent = text;
  }
  return e;
}

function currentTarget(): string {
  const url = input("target-gateway").checked ? input("gateway-url").value : input("dropin-url").value;
  return url.trim().replace(/\/+$/, "");
}

function showOrigins(): void {
  el("page-origin").textContent = location.origin;
  let target = currentTarget();
  try {
    target = new URL(target).origin;
  } catch {
    target = `${target} (not a URL)`;
  }
  el("target-origin").textContent = target;
}

function optionsFor(client: ClientId, c: Case): RunOptions {
  // Only Greet declares authorization and x-request-id in the proto: the
  // policy would refuse them, and so the call, on any other method.
  const headers: Record<string, string> = {};
  const auth = input("authorization").value.trim();
  const requestId = input("request-id").value.trim();
  if (auth && c.method === "Greet") {
    headers["authorization"] = auth;
  }
  if (requestId && c.method === "Greet") {
    headers["x-request-id"] = requestId;
  }
  return {
    client,
    method: c.method,
    target: currentTarget(),
    name: c.emptyName ? "" : input("name").value,
    greeting: input("greeting").value,
    count: Number(input("count").value) || 0,
    intervalMs: 0,
    headers,
    credentials: input("credentials").checked,
    dropIn: !input("target-gateway").checked,
  };
}

/** shorten keeps long values (base64 details) from swamping the table. */
function shorten(v: string, max = 36): string {
  return v.length > max ? `${v.slice(0, max - 1)}…` : v;
}

function pairs(m: Record<string, string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k}: ${shorten(v)}`)
    .join("\n");
}

function fill(row: HTMLTableRowElement, r: RunResult): void {
  const state = !r.supported ? "unsupported" : r.ok ? "ok" : "error";
  row.dataset.state = state;
  const cell = (field: string) => row.querySelector<HTMLElement>(`[data-field="${field}"]`)!;
  const badge = node("span", { class: `badge ${state}` }, r.code);
  cell("status").replaceChildren(badge);
  if (r.ok) {
    cell("result").textContent = r.messages.map((m) => JSON.stringify(m)).join("\n");
  } else {
    cell("result").textContent = r.message;
  }
  cell("headers").textContent = pairs(r.headers);
  cell("trailers").textContent = pairs(r.trailers);
  cell("details").textContent = r.details.map((d) => `${d.type} ${JSON.stringify(d.value)}`).join("\n");
  cell("time").textContent = r.supported ? `${r.elapsedMs}` : "";
}

async function runRow(row: HTMLTableRowElement, client: ClientId, c: Case): Promise<RunResult> {
  row.dataset.state = "running";
  const r = await run(optionsFor(client, c));
  fill(row, r);
  return r;
}

function buildTable(): void {
  const table = el<HTMLTableElement>("results");
  for (const client of clientIds) {
    const body = node("tbody", { "data-client": client });
    const head = node("tr", { class: "group" });
    head.appendChild(node("th", { colspan: "8", scope: "rowgroup" }, clientLabels[client]));
    body.appendChild(head);
    for (const c of cases) {
      const row = node("tr", {
        id: `row-${client}-${c.id}`,
        "data-client": client,
        "data-case": c.id,
        "data-method": c.method,
        "data-state": "idle",
      }) as HTMLTableRowElement;
      row.appendChild(node("td", { class: "method" }, c.label));
      for (const field of ["status", "result", "headers", "trailers", "details", "time"]) {
        row.appendChild(node("td", { "data-field": field, class: field }));
      }
      const action = node("td", { class: "action" });
      const reason = unsupportedReason(client, c.method);
      const button = node("button", { type: "button", class: "run-one", "data-run": `${client}/${c.id}` }, "Run");
      if (reason) {
        button.setAttribute("title", reason);
        (button as HTMLButtonElement).disabled = true;
      }
      button.addEventListener("click", () => void runRow(row, client, c));
      action.appendChild(button);
      row.appendChild(action);
      body.appendChild(row);
    }
    table.appendChild(body);
  }
}

let running: Promise<RunResult[]> | undefined;

function runAll(): Promise<RunResult[]> {
  if (running) {
    return running;
  }
  document.body.dataset.state = "running";
  el<HTMLButtonElement>("run-all").disabled = true;
  running = (async () => {
    const results: RunResult[] = [];
    // One call at a time: SetGreeting changes what later calls answer.
    for (const client of clientIds) {
      for (const c of cases) {
        results.push(await runRow(el<HTMLTableRowElement>(`row-${client}-${c.id}`), client, c));
      }
    }
    return results;
  })().finally(() => {
    running = undefined;
    document.body.dataset.state = "done";
    el<HTMLButtonElement>("run-all").disabled = false;
  });
  return running;
}

function clear(): void {
  for (const row of document.querySelectorAll<HTMLTableRowElement>("tr[data-case]")) {
    row.dataset.state = "idle";
    for (const td of row.querySelectorAll("td[data-field]")) {
      td.replaceChildren();
    }
  }
  document.body.dataset.state = "idle";
}

/**
 * loadConfig asks the page's own origin for config.json ({"api": URL}, served
 * by `corsgate demo`) to learn the drop-in API's URL. A page served elsewhere
 * has none and keeps the default.
 */
async function loadConfig(): Promise<void> {
  try {
    const res = await fetch("config.json", { cache: "no-store" });
    if (!res.ok) {
      return;
    }
    const cfg: unknown = await res.json();
    if (cfg && typeof cfg === "object" && "api" in cfg && typeof cfg.api === "string" && cfg.api) {
      input("dropin-url").value = cfg.api;
    }
  } catch {
    // No config: keep the default.
  }
}

async function init(): Promise<void> {
  const q = new URLSearchParams(location.search);
  const api = q.get("api");
  const gateway = q.get("gateway");
  if (api) {
    input("dropin-url").value = api;
  } else {
    await loadConfig();
  }
  if (gateway) {
    input("gateway-url").value = gateway;
    input("target-gateway").checked = true;
  }
  if (q.get("target") === "dropin") {
    input("target-dropin").checked = true;
  }
  for (const id of ["target-dropin", "target-gateway", "dropin-url", "gateway-url"]) {
    el(id).addEventListener("input", showOrigins);
  }
  el("run-all").addEventListener("click", () => void runAll());
  el("clear").addEventListener("click", clear);
  buildTable();
  showOrigins();
  window.corsgateTest = {
    ready: true,
    clients: clientIds,
    cases,
    run,
    runAll,
    target: currentTarget,
  };
  document.body.dataset.state = "idle";
}

void init();
