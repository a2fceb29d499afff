// The admin page of a hotline-bridge node: calls /api/v1 with the token the admin
// pastes (kept in sessionStorage only: never in the URL, never in localStorage) and
// renders every value with textContent, never as HTML (the data may hold hostile text).
"use strict";

const TOKEN_KEY = "hotline-bridge.admin-token";
const REFRESH_MS = 10000;
const LETTERS_LIMIT = 100;
const SYSTEMS = ["12345", "12351"];
const $ = (id) => document.getElementById(id);

// --- the API ----------------------------------------------------------------------

class ApiError extends Error {
  /** A failed call: its HTTP status (0: no answer) and the problem document's words. */
  constructor(status, title, detail) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
  }
  toString() {
    return this.status ? `${this.status} ${this.message}` : this.message;
  }
}

async function api(method, path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "the node did not answer", String(err && err.message || err));
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const title = (data && data.title) || response.statusText || "error";
    const detail = data && data.detail ? data.detail : (data ? null : text.slice(0, 200) || null);
    const error = new ApiError(response.status, title, detail);
    if (response.status === 401) loggedOut(error);
    throw error;
  }
  return data;
}

// --- rendering (text only) --------------------------------------------------------

function show(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** An element with constant attributes and children; strings become text nodes. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "class") node.className = value;
    else if (name === "title") node.title = show(value);
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : document.createTextNode(show(child)));
  }
  return node;
}

function fill(target, ...nodes) {
  target.replaceChildren(...nodes.flat());
}

function time(iso) {
  if (!iso) return "—";
  const at = new Date(iso);
  if (Number.isNaN(at.getTime())) return show(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())} ` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

function timeCell(iso) {
  return el("td", { title: iso || "" }, time(iso));
}

function seconds(s) {
  if (s === null || s === undefined) return "—";
  const n = Math.round(Number(s));
  if (n < 120) return `${n} s`;
  if (n < 7200) return `${Math.floor(n / 60)} min ${n % 60} s`;
  if (n < 172800) return `${Math.floor(n / 3600)} h ${Math.floor((n % 3600) / 60)} min`;
  return `${Math.floor(n / 86400)} d ${Math.floor((n % 86400) / 3600)} h`;
}

function pairs(target, rows) {
  fill(target, rows.flatMap(([term, value, cls]) => [
    el("dt", {}, term), el("dd", cls ? { class: cls } : {}, value),
  ]));
}

function table(headings, rows) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headings.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows));
}

function row(...cells) {
  return el("tr", {}, cells.map((c) => (c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c))));
}

function say(target, error) {
  target.textContent = error ? String(error) : "";
  target.hidden = !error;
}

// --- status -----------------------------------------------------------------------

function renderStatus(status) {
  const problems = status.problems || [];
  fill($("problems"), problems.length
    ? problems.map((p) => el("li", { class: `problem ${p.severity === "warning" ? "warning" : "error"}` },
      el("strong", {}, p.what), " — ", el("span", {}, p.detail)))
    : [el("li", { class: "ok" }, "No problems.")]);

  const node = status.node || {};
  $("node").textContent = `node ${show(node.node_id)} · sides ${show((node.sides || []).join(", "))}` +
    ` · up ${seconds(node.uptime_s)}`;

  const sides = status.sides || {};
  fill($("sides").tBodies[0], Object.keys(sides).sort().flatMap((system) => {
    const side = sides[system] || {};
    const feeds = side.feeds && side.feeds.length ? side.feeds : [null];
    return feeds.map((feed) => row(
      system,
      el("td", side.paused ? { class: "bad" } : {}, side.paused ? "paused" : "consuming"),
      show(side.queue_depth),
      feed ? feed.feed : "—",
      timeCell(feed && feed.last_success_at),
      feed ? seconds(feed.lag_s) : "—",
      el("td", feed && feed.failing ? { class: "bad" } : {},
        feed ? (feed.failing ? `failing: ${show(feed.last_error)}` : "ok") : "not polled here"),
    ));
  }));

  const outbox = status.outbox || {};
  const letters = status.dead_letters || {};
  const sla = status.sla || {};
  pairs($("backlog"), [
    ["outbox depth", show(outbox.depth)],
    ["oldest in outbox", seconds(outbox.oldest_age_s)],
    ["dead letters parked", show(letters.parked), letters.parked ? "bad" : ""],
    ["early warnings open", show(status.early_warnings_open)],
    ["SLA at risk", show(sla.at_risk), sla.at_risk ? "warn" : ""],
    ["SLA breached", show(sla.breached), sla.breached ? "bad" : ""],
  ]);
  fill($("by-reason").tBodies[0], (letters.by_reason || []).map((r) =>
    row(r.system, r.stage, r.field, r.count)));

  const run = status.last_reconciliation;
  if (!run) {
    pairs($("reconciliation"), [["run", "none yet"]]);
  } else {
    pairs($("reconciliation"), [
      ["run", show(run.id)],
      ["status", show(run.status), run.status === "failed" ? "bad" : ""],
      ["trigger", show(run.trigger)],
      ["dry run", show(run.dry_run)],
      ["started", time(run.started_at)],
      ["finished", time(run.finished_at)],
      ["counts", show(run.counts)],
    ]);
  }
}

function statusFailed(error) {
  fill($("problems"), [el("li", { class: "problem error" },
    el("strong", {}, "status unavailable"), " ", el("span", {}, String(error)))]);
}

// --- dead letters -----------------------------------------------------------------

const notes = new Map();  // letter id → {text, cls}: what the last action on it answered

function renderLetters(page) {
  const items = page.items || [];
  $("letters-more").textContent = page.next_cursor
    ? `Showing the first ${items.length}; more are parked (see the CLI or the API).` : "";
  fill($("letters").tBodies[0], items.length
    ? items.map(letterRow)
    : [el("tr", {}, el("td", { colspan: "10", class: "ok" }, "None parked."))]);
}

function letterRow(letter) {
  const status = el("td", { class: "status" }, letter.status);
  const note = el("div", { class: "note", role: "status" });
  const replay = el("button", { type: "button", class: "replay" }, "Replay");
  const discard = el("button", { type: "button", class: "discard" }, "Discard");
  const referral = letter.referral_id
    ? el("button", { type: "button", class: "link" }, letter.referral_id) : "—";
  if (letter.referral_id) referral.addEventListener("click", () => find(letter.referral_id));
  const tr = el("tr", { "data-letter": String(letter.id) },
    el("td", {}, letter.id), el("td", {}, letter.system), el("td", {}, letter.stage),
    el("td", { class: "reason" }, letter.reason), el("td", {}, letter.field),
    el("td", {}, referral), el("td", {}, letter.attempts), timeCell(letter.created_at),
    status, el("td", { class: "act" }, replay, " ", discard, note));
  const remembered = notes.get(letter.id);
  if (remembered) Object.assign(note, { textContent: remembered.text, className: `note ${remembered.cls}` });

  const act = async (action, body) => {
    replay.disabled = discard.disabled = true;
    note.textContent = `${action}…`;
    note.className = "note";
    try {
      const result = await api("POST",
        `/api/v1/dead-letters/${encodeURIComponent(letter.id)}/${action}`, body);
      const outcome = result && result.outcome ? ` (${result.outcome})` : "";
      status.textContent = show(result && result.status);
      tr.classList.add("done");
      remember(letter.id, `${show(result && result.status)}${outcome}`, "ok", action);
      Object.assign(note, { textContent: notes.get(letter.id).text, className: "note ok" });
      refreshStatus();
    } catch (error) {
      replay.disabled = discard.disabled = false;
      remember(letter.id, String(error), "error", action);
      Object.assign(note, { textContent: String(error), className: "note error" });
    }
  };
  replay.addEventListener("click", () => act("replay", { mapping: "current" }));
  let armed = null;
  discard.addEventListener("click", () => {
    if (!armed) {  // a discard cannot be undone: the second click does it
      discard.textContent = "Confirm discard";
      armed = setTimeout(() => { armed = null; discard.textContent = "Discard"; }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    discard.textContent = "Discard";
    act("discard", { reason: null });
  });
  return tr;
}

function remember(id, text, cls, action) {
  notes.set(id, { text, cls });
  const clock = time(new Date().toISOString()).slice(11);
  $("actions").prepend(el("li", { class: cls }, `${clock} ${action} dead letter ${id}: ${text}`));
  while ($("actions").children.length > 20) $("actions").lastChild.remove();
}

// --- referral search --------------------------------------------------------------

async function find(query) {
  const wanted = query.trim();
  $("search").value = wanted;
  say($("search-error"), null);
  fill($("referral"));
  if (!wanted) {
    say($("search-error"), "Enter a referral id or <system>:<number>, e.g. 12345:BJ12345-20261129-004211.");
    return;
  }
  // "12345:…" names its system; a bare number is tried on each side
  const candidates = wanted.includes(":") ? [wanted] : SYSTEMS.map((s) => `${s}:${wanted}`);
  let last = null;
  for (const candidate of candidates) {
    try {
      const referral = await api("GET", `/api/v1/referrals/${encodeURIComponent(candidate)}`);
      renderReferral(referral);
      return;
    } catch (error) {
      last = error;
      if (error.status !== 404) break;
    }
  }
  say($("search-error"), last);
}

function renderReferral(r) {
  const ids = r.ids || {}, numbers = r.numbers || {}, native = r.native_status || {};
  const systems = [...new Set([...Object.keys(ids), ...Object.keys(numbers), ...Object.keys(native)])].sort();
  const summary = el("dl", { class: "summary" });
  pairs(summary, [
    ["referral", show(r.referral_id)], ["direction", show(r.direction)],
    ["state", show(r.state)], ["early warning", show(r.early_warning), r.early_warning ? "warn" : ""],
    ["priority", show(r.priority)], ["district", show(r.district_code)],
    ["created", time(r.created_at)], ["updated", time(r.updated_at)],
    ["dead letters parked", show(r.parked), r.parked ? "bad" : ""],
  ]);
  const sides = table(["system", "id", "number", "native status"],
    systems.map((s) => row(s, ids[s], numbers[s], native[s])));
  sides.id = "referral-sides";
  const sla = (r.sla || []).length
    ? table(["deadline", "system", "due", "state"], r.sla.map((d) =>
      el("tr", d.state === "breached" ? { class: "bad" } : {},
        el("td", {}, d.kind), el("td", {}, d.system), timeCell(d.due_at), el("td", {}, d.state))))
    : el("p", { class: "muted" }, "No deadlines.");
  const timeline = table(["at", "system", "kind", "outcome", "attempt", "mapping", "detail"],
    (r.timeline || []).map((e) => row(timeCell(e.at), e.system, e.kind, e.outcome, e.attempt,
      e.mapping, el("td", { class: "detail" }, show(e.detail)))));
  timeline.id = "timeline";
  const letters = (r.dead_letters || []).length
    ? table(["id", "status", "system", "stage", "reason"], r.dead_letters.map((d) =>
      row(d.id, d.status, d.system, d.stage, el("td", { class: "reason" }, d.reason))))
    : el("p", { class: "muted" }, "No dead letters.");
  fill($("referral"), summary, el("h3", {}, "Both sides"), sides, el("h3", {}, "Deadlines"), sla,
    el("h3", {}, "Timeline"), timeline, el("h3", {}, "Dead letters"), letters);
}

// --- token, refresh ---------------------------------------------------------------

function loggedOut(error) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(timer);
  timer = null;
  $("main").hidden = true;
  $("forget").hidden = $("refresh").hidden = true;
  $("login").hidden = false;
  say($("login-error"), error);
  $("token").focus();
}

async function refreshStatus() {
  try {
    renderStatus(await api("GET", "/api/v1/status"));
    return null;
  } catch (error) {
    statusFailed(error);
    return error;
  }
}

async function refreshLetters() {
  try {
    renderLetters(await api("GET", `/api/v1/dead-letters?status=parked&limit=${LETTERS_LIMIT}`));
    say($("letters-error"), null);
    return null;
  } catch (error) {
    say($("letters-error"), error);
    return error;
  }
}

let timer = null;
let refreshing = false;

async function refresh() {
  if (refreshing || !sessionStorage.getItem(TOKEN_KEY)) return;
  refreshing = true;
  try {
    const errors = (await Promise.all([refreshStatus(), refreshLetters()])).filter(Boolean);
    const clock = time(new Date().toISOString()).slice(11);
    $("refreshed").textContent = errors.length
      ? `refresh at ${clock} failed: ${errors[0]}` : `refreshed at ${clock}`;
    $("refreshed").className = errors.length ? "error" : "muted";
  } finally {
    refreshing = false;
  }
}

function loggedIn() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("forget").hidden = $("refresh").hidden = false;
  say($("login-error"), null);
  refresh();
  if (!timer) timer = setInterval(refresh, REFRESH_MS);
}

function start() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    loggedIn();
  });
  $("forget").addEventListener("click", () => loggedOut(null));
  $("refresh").addEventListener("click", () => refresh());
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    find($("search").value);
  });
  if (sessionStorage.getItem(TOKEN_KEY)) loggedIn();
  else loggedOut(null);
}

start();
