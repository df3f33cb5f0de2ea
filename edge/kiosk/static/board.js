/* The kiosk's lane board: lanes, alerts (acknowledged by staff), today's counts, now boarding,
   the PAD line and the box's health (cameras, gate link, thermal screening; the matcher's
   operating point for engineers and supervisors). The badge says "live" only while the stream
   is connected AND the daemon reports the cameras delivering and the gate link up; otherwise
   it says what is wrong. Loaded after kiosk.js, whose $, api, state, show, say, cap, when,
   TIME_24H, STATE_WORDS, COUNT_WORDS and loggedOut it uses. */
"use strict";

state.health = null; state.connected = false;

/* ---------- lane board ---------- */
function laneCard(lane) {
  let card = $("lane-" + lane);
  if (card) return card;
  card = document.createElement("article");
  card.id = "lane-" + lane;
  card.className = "lane";
  card.dataset.lane = lane;
  card.setAttribute("aria-label", "Lane " + lane);
  const title = document.createElement("h3"); title.textContent = "Lane " + lane;
  const st = document.createElement("p"); st.className = "lane-state"; st.id = "lane-" + lane + "-state";
  const detail = document.createElement("p"); detail.className = "lane-detail"; detail.id = "lane-" + lane + "-detail";
  card.append(title, st, detail);
  if (state.session && state.session.can_override) {
    const ctl = document.createElement("div"); ctl.className = "lane-controls";
    const label = document.createElement("label");
    label.htmlFor = "reason-" + lane; label.textContent = "Reason";
    const reason = document.createElement("input"); reason.id = "reason-" + lane;
    reason.placeholder = "needed, e.g. wheelchair user";
    ctl.append(label, reason);
    for (const [action, words] of [["open", "Open once"], ["close", "Close"], ["reset", "Reset"]]) {
      const b = document.createElement("button"); b.type = "button";
      b.id = "lane-" + lane + "-" + action; b.dataset.action = action; b.dataset.lane = lane;
      b.textContent = words; b.className = action === "open" ? "yes" : "secondary";
      b.addEventListener("click", () => laneAction(lane, action));
      ctl.append(b);
    }
    card.append(ctl);
  }
  $("lanes").append(card);
  return card;
}

function setLane(l) {
  const card = laneCard(l.lane);
  card.dataset.state = l.state;
  $("lane-" + l.lane + "-state").textContent = STATE_WORDS[l.state] || l.state;
  $("lane-" + l.lane + "-detail").textContent = l.detail || "";
}

function addAlert(a) {
  const li = document.createElement("li");
  li.id = "alert-" + a.id;
  li.dataset.kind = a.kind; li.dataset.lane = a.lane; li.dataset.alertId = a.id;
  const t = when(a.at, TIME_24H);
  const text = document.createElement("span"); text.className = "alert-text";
  text.textContent = t + "  Lane " + a.lane + ": " + a.message;
  li.append(text);
  if (a.acked_by) markAcked(li, a);
  else if (state.session && state.session.can_enrol) {
    const b = document.createElement("button"); b.type = "button"; b.className = "secondary ack";
    b.id = "alert-" + a.id + "-ack"; b.textContent = "Acknowledge";
    b.setAttribute("aria-label", "Acknowledge the alert at lane " + a.lane + ": " + a.message);
    b.addEventListener("click", () => acknowledge(a.id));
    li.append(" ", b);
  }
  $("alerts").prepend(li);
  while ($("alerts").children.length > 20) $("alerts").lastChild.remove();
}

function markAcked(li, a) {
  li.dataset.acked = "true";
  const old = li.querySelector("button.ack"); if (old) old.remove();
  if (li.querySelector(".acked")) return;
  const who = document.createElement("span"); who.className = "acked";
  who.textContent = " (seen by " + a.acked_by + " at " + when(a.acked_at, TIME_24H) + ")";
  li.append(who);
}

async function acknowledge(id) {
  try {
    const a = await api("POST", "/api/board/alerts/" + encodeURIComponent(id) + "/ack");
    const li = $("alert-" + id); if (li) markAcked(li, a);
  } catch (err) { say(cap(err.message), "warn"); }
}

/* ---------- the box's health: faults in plain words, and the live badge ---------- */
function renderHealth(h) {
  state.health = h;
  const list = $("health");
  list.replaceChildren();
  for (const p of (h && h.problems) || []) {
    const li = document.createElement("li");
    li.dataset.what = p.what; li.dataset.state = p.state; li.textContent = p.message;
    list.append(li);
  }
  show(list, !!(h && h.problems && h.problems.length));
  const op = $("operating-point");
  const point = h && h.operating_point;
  show(op, !!point);
  if (point) {
    op.dataset.inRange = String(point.in_range);
    op.textContent = "Matcher: threshold " + point.threshold + ", gallery " + point.gallery_size +
      " templates, FPIR target " + point.target_fpir + (point.warning ? ". Warning: " + point.warning : "");
  }
  renderBadge();
}

function renderBadge() {
  const badge = $("board-status");
  const h = state.health;
  badge.dataset.connected = String(state.connected);
  if (!state.connected) {
    badge.dataset.health = "offline"; badge.textContent = "reconnecting...";
  } else if (!h) {
    badge.dataset.health = "unknown"; badge.textContent = "connected: health not reported yet";
  } else if (h.live) {
    badge.dataset.health = "live"; badge.textContent = "live";
  } else {
    const first = (h.problems || []).find((p) => p.what !== "thermal");
    badge.dataset.health = "degraded";
    badge.textContent = "degraded: " + (first ? first.message : "see the faults below");
  }
}

function renderCounts(counts) {
  state.counts = counts;
  const box = $("counts");
  box.replaceChildren();
  const max = Math.max(1, ...Object.values(counts));
  for (const [field, n] of Object.entries(counts)) {
    const row = document.createElement("div"); row.className = "bar-row";
    row.dataset.field = field; row.dataset.count = String(n); row.id = "count-" + field;
    const name = document.createElement("span"); name.className = "bar-name";
    name.textContent = COUNT_WORDS[field] || cap(field.replace(/_/g, " "));
    const bar = document.createElement("span"); bar.className = "bar";
    bar.style.width = Math.round(100 * n / max) + "%";
    const num = document.createElement("span"); num.className = "bar-num"; num.textContent = String(n);
    row.append(name, bar, num); box.append(row);
  }
}

/* ---------- now boarding ---------- */
function renderBoarding(b) {
  const box = $("boarding");
  const flights = (b && b.flights) || [];
  box.dataset.source = flights.length ? b.source : "none";
  $("boarding-now").textContent = flights.length
    ? "Now boarding: " + flights.join(", ") + (b.source === "schedule" ? " (schedule)" : " (set by a supervisor)")
    : "No flight set: travellers of every flight can board.";
}

/* ---------- which presentation-attack detection runs (never claimed where none does) ---------- */
function renderPad(p) {
  const line = $("pad-line");
  line.dataset.active = p ? p.active : "unknown";
  line.textContent = p ? p.message : "Presentation-attack detection: not reported yet.";
}

async function refreshBoarding() {
  try {
    const b = await api("GET", "/api/boarding");
    renderBoarding(b);
    const sel = $("boarding-choice");
    const keep = sel.value;
    sel.replaceChildren(new Option("Type a flight below instead", ""));
    for (const c of b.choices) {
      sel.append(new Option(c.flight + " (" + c.travellers + " enrolled)", c.scope));
    }
    sel.value = [...sel.options].some((o) => o.value === keep) ? keep : (b.scopes[0] || "");
  } catch (e) { /* shown elsewhere */ }
}

$("boarding-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const typed = $("boarding-typed").value.trim();
  const flight = typed || $("boarding-choice").value;
  if (!flight) { say("Pick a flight or type its number, then set it.", "warn"); $("boarding-choice").focus(); return; }
  try {
    const b = await api("PUT", "/api/boarding", { flights: [flight] });
    $("boarding-typed").value = "";
    renderBoarding(b); say(b.message, "info");
    await refreshBoarding();
  } catch (err) { say(cap(err.message), "warn"); $("boarding-typed").focus(); }
});

$("boarding-clear").addEventListener("click", async () => {
  try {
    const b = await api("DELETE", "/api/boarding");
    renderBoarding(b); say(b.message, "info");
    await refreshBoarding();
  } catch (err) { say(cap(err.message), "warn"); }
});

function applySnapshot(s) {
  renderBoarding(s.boarding);
  renderPad(s.pad);
  for (const l of s.lanes) setLane(l);
  $("alerts").replaceChildren();
  for (const a of s.alerts) addAlert(a);
  renderCounts(s.counts);
  renderHealth(s.health);
}

function startBoard() {
  if (state.events) return;
  refreshConsents();
  show($("boarding-form"), !!(state.session && state.session.can_override));
  refreshBoarding();
  const es = new EventSource("/api/board/events");
  state.events = es;
  es.onopen = () => { state.connected = true; renderBadge(); };
  es.onerror = () => { state.connected = false; renderBadge(); };
  es.addEventListener("snapshot", (e) => applySnapshot(JSON.parse(e.data)));
  es.addEventListener("state", (e) => setLane(JSON.parse(e.data)));
  es.addEventListener("alert", (e) => addAlert(JSON.parse(e.data)));
  es.addEventListener("counts", (e) => renderCounts(JSON.parse(e.data).counts));
  es.addEventListener("boarding", (e) => renderBoarding(JSON.parse(e.data).boarding));
  es.addEventListener("pad", (e) => renderPad(JSON.parse(e.data).pad));
  es.addEventListener("health", (e) => renderHealth(JSON.parse(e.data).health));
  es.addEventListener("ack", (e) => {
    const a = JSON.parse(e.data); const li = $("alert-" + a.id); if (li) markAcked(li, a);
  });
  es.addEventListener("session_expired", () => { stopBoard(); loggedOut("Your session has ended: log in again."); });
}

function clearBoard() {
  stopBoard();
  $("lanes").replaceChildren();   // lane cards carry role-specific controls: rebuild per log-in
  $("alerts").replaceChildren();
  $("counts").replaceChildren();
  renderBoarding(null); renderPad(null); renderHealth(null); show($("boarding-form"), false);
  $("active-consents").textContent = "-"; $("next-expiry").textContent = "-";
}

function stopBoard() {
  if (state.events) { state.events.close(); state.events = null; }
  state.connected = false; renderBadge();
}

async function refreshConsents() {
  try {
    const c = await api("GET", "/api/consents/summary");
    $("active-consents").textContent = String(c.active);
    $("next-expiry").textContent = c.next_expiry_at ? when(c.next_expiry_at) : "none";
  } catch (e) { /* shown elsewhere */ }
}

async function laneAction(lane, action) {
  const reason = $("reason-" + lane).value.trim();
  if (reason.length < 3) { say("Type a reason (a few words) before you " + action + " lane " + lane + ".", "warn"); $("reason-" + lane).focus(); return; }
  const path = "/api/lanes/" + encodeURIComponent(lane) + (action === "reset" ? "/reset" : "/override");
  const body = action === "reset" ? { reason } : { action, reason };
  try {
    const r = await api("POST", path, body);
    say(r.message, "info");
    $("reason-" + lane).value = "";
  } catch (err) { say(cap(err.message), "warn"); }
}

