// The ops dashboard page: no build step. Every value is written with textContent,
// never as HTML: dead-letter payloads are arbitrary input.
"use strict";

const KEY = "clinicflow.ops.key";
const state = { key: sessionStorage.getItem(KEY), me: null, location: null, open: null };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function fill(tableId, rows, empty) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren(...rows);
  if (!rows.length) {
    const td = el("td", empty || "nothing yet");
    td.colSpan = $(tableId).querySelectorAll("th").length;
    td.className = "muted";
    body.appendChild(row([td]));
  }
}

function num(value, bad) {
  return el("td", value, "num" + (bad ? " bad" : ""));
}

function time(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { Authorization: `Bearer ${state.key}`, ...(options.headers || {}) },
  });
  if (response.status === 401) throw new Error("unauthorized");
  return response;
}

function setStatus(text, cls) {
  $("status").textContent = text;
  $("status").className = "status " + (cls || "");
}

function spark(counts) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", `0 0 ${counts.length} 10`);
  svg.setAttribute("preserveAspectRatio", "none");
  const top = Math.max(1, ...counts);
  counts.forEach((n, i) => {
    const rect = document.createElementNS(ns, "rect");
    const h = (n / top) * 10;
    rect.setAttribute("x", i + 0.1);
    rect.setAttribute("width", 0.8);
    rect.setAttribute("y", 10 - h);
    rect.setAttribute("height", h);
    svg.appendChild(rect);
  });
  const td = el("td");
  td.appendChild(svg);
  return td;
}

function render(view) {
  const flow = view.flow;
  const total = Object.values(flow.window_total).reduce((a, b) => a + b, 0);
  $("tile-events").textContent = total;
  $("tile-lag").textContent = view.lag_total;
  $("tile-lag").className = "value" + (view.lag_total > 0 ? " bad" : "");
  $("tile-dead").textContent = view.dead_letters.open;
  $("tile-dead").className = "value" + (view.dead_letters.open > 0 ? " bad" : "");
  $("tile-waitlist").textContent = Object.values(view.waitlist).reduce((a, b) => a + b, 0);
  const status = view.notifications.by_status;
  $("tile-failed").textContent = status.failed || 0;
  $("tile-failed").className = "value" + (status.failed ? " bad" : "");
  $("tile-suppressed").textContent = status.suppressed || 0;
  $("flow-window").textContent = `last ${flow.minutes.length} minutes to ${time(view.now)}`;

  fill("flow", Object.entries(flow.topics).map(([topic, counts]) =>
    row([el("td", topic), spark(counts), num(flow.window_total[topic])])));

  fill("services", view.services.map((s) => row([
    el("td", s.service), el("td", s.instance),
    el("td", s.ready ? "ready" : (s.error ? `down (${s.error})` : "not ready"), s.ready ? "ok" : "bad"),
    el("td", Object.entries(s.checks).map(([k, v]) => `${k} ${v ? "ok" : "failing"}`).join(", ")),
  ])), "no service answered yet");

  // one row per service and topic; the partition furthest behind is named
  const groups = new Map();
  for (const l of view.lag) {
    const id = `${l.service} ${l.topic}`;
    const g = groups.get(id) || { service: l.service, topic: l.topic, partitions: 0, lag: 0, worst: null, instances: new Set() };
    g.partitions += 1;
    g.lag += l.lag;
    if (l.lag > 0 && (!g.worst || l.lag > g.worst.lag)) g.worst = l;
    g.instances.add(l.instance);
    groups.set(id, g);
  }
  fill("lag", [...groups.values()].map((g) => row([
    el("td", g.service), el("td", g.topic), num(g.partitions), num(g.lag, g.lag > 0),
    el("td", g.worst ? `partition ${g.worst.partition}: ${g.worst.lag} on ${g.worst.instance}` : "-"),
    el("td", [...g.instances].join(", ")),
  ])), "no partitions reported");

  const locations = new Set([...Object.keys(view.bookings), ...Object.keys(view.waitlist)]);
  fill("bookings", [...locations].sort().map((loc) => {
    const b = view.bookings[loc] || {};
    return row([el("td", loc), num(b.booked || 0), num(b.waitlisted || 0), num(b.offered || 0),
      num(b.cancelled || 0), num(b.no_show || 0), num(b.completed || 0), num(view.waitlist[loc] ?? "-")]);
  }));

  $("notification-status").textContent = Object.entries(status).map(([k, v]) => `${k}: ${v}`).join(" · ") || "no messages yet";
  fill("problems", view.notifications.problems.map((p) => row([
    el("td", time(p.at)), el("td", p.status, "bad"), el("td", p.kind), el("td", p.channel),
    el("td", p.reason), el("td", p.location),
  ])), "no failed or suppressed messages");

  fill("dead", view.dead_letters.recent.map((d) => {
    const open = el("button", "Inspect", "secondary");
    open.type = "button";
    open.dataset.id = d.id;
    open.addEventListener("click", () => inspect(d.id));
    const action = el("td");
    action.appendChild(open);
    return row([el("td", time(d.failed_at)), el("td", d.service),
      el("td", `${d.source_topic}[${d.partition}]@${d.offset}`), el("td", d.original_type || "unreadable"),
      el("td", d.error, "error-text"), el("td", d.replayed ? "replayed" : "open", d.replayed ? "ok" : "bad"), action]);
  }), "no dead letters");

  fill("totals", view.totals.map((t) => row([el("td", t.topic), el("td", t.type), num(t.count)])));
}

async function inspect(id) {
  const response = await api(`/v1/deadletters/${encodeURIComponent(id)}`);
  if (!response.ok) {
    $("dead-result").textContent = `could not open it (${response.status})`;
    return;
  }
  const dead = await response.json();
  state.open = dead.id;
  $("dead-id").textContent = dead.id;
  const facts = $("dead-facts");
  facts.replaceChildren();
  for (const [label, value] of [["service", dead.service], ["record", `${dead.source_topic}[${dead.partition}]@${dead.offset}`],
    ["key", dead.key], ["error", dead.error], ["failed", time(dead.failed_at)], ["correlation", dead.correlation_id],
    ["state", dead.replayed ? `replayed ${time(dead.replayed.at)} at offset ${dead.replayed.offset}` : "open"]]) {
    facts.appendChild(el("dt", label));
    facts.appendChild(el("dd", value));
  }
  $("dead-payload").textContent = typeof dead.payload === "string" ? dead.payload : JSON.stringify(dead.payload, null, 2);
  $("dead-replay").hidden = !state.me.may_replay || Boolean(dead.replayed);
  $("dead-result").textContent = "";
  $("dead-detail").hidden = false;
}

async function replay() {
  const response = await api(`/v1/deadletters/${encodeURIComponent(state.open)}/replay`, { method: "POST" });
  const body = await response.json();
  if (response.ok) {
    $("dead-result").textContent = `replayed to ${body.replayed.topic} at offset ${body.replayed.offset}`;
    $("dead-replay").hidden = true;
  } else {
    $("dead-result").textContent = `not replayed: ${body.detail}`;
  }
}

async function follow() {
  const query = state.location ? `?location=${encodeURIComponent(state.location)}` : "";
  for (;;) {
    try {
      const response = await api(`/v1/stream${query}`);
      if (!response.ok) throw new Error(`stream answered ${response.status}`);
      setStatus("live", "live");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) render(JSON.parse(data));
        }
      }
    } catch (error) {
      if (error.message === "unauthorized") return showLogin("that key is not accepted");
      setStatus(`reconnecting (${error.message})`, "down");
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

function showLogin(message) {
  sessionStorage.removeItem(KEY);
  state.key = null;
  $("board").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("api-key").focus();
}

async function start() {
  let response;
  try {
    response = await api("/v1/me");
  } catch (error) {
    return showLogin("that key is not accepted");
  }
  if (!response.ok) return showLogin(response.status === 403 ? "this key may not read the dashboard" : "that key is not accepted");
  state.me = await response.json();
  const match = location.pathname.match(/^\/locations\/([^/]+)$/);
  state.location = match ? decodeURIComponent(match[1]) : null;
  if (!state.location && !state.me.chain_wide) {
    if (!state.me.locations.length) return showLogin("this key reaches no location");
    location.replace(`/locations/${encodeURIComponent(state.me.locations[0].id)}`);
    return;
  }
  const here = state.me.locations.find((l) => l.id === state.location);
  $("scope-name").textContent = here ? `${state.me.chain.name} · ${here.name}` : state.me.chain.name;
  document.title = `clinicflow ops · ${$("scope-name").textContent}`;
  const nav = $("locations");
  nav.replaceChildren();
  if (state.me.chain_wide) {
    const all = el("a", "all locations", state.location ? "" : "current");
    all.href = "/";
    nav.appendChild(all);
  }
  for (const loc of state.me.locations) {
    const link = el("a", loc.name, loc.id === state.location ? "current" : "");
    link.href = `/locations/${encodeURIComponent(loc.id)}`;
    nav.appendChild(link);
  }
  $("login").hidden = true;
  $("board").hidden = false;
  follow();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  sessionStorage.setItem(KEY, state.key);
  start();
});
$("dead-replay").addEventListener("click", replay);
$("dead-close").addEventListener("click", () => { $("dead-detail").hidden = true; });

if (state.key) start(); else showLogin();
