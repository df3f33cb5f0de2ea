/* Staff kiosk page: log in, enrol with consent, withdraw, live lane board.
   Plain JavaScript, no build step. The page never shows a photo: a chosen file is read,
   sent once as base64 and dropped. Every change sends the session's CSRF token. */
"use strict";

const $ = (id) => document.getElementById(id);
const state = { csrf: null, session: null, consentVersion: null, reference: null,
                flight: null, photos: [], source: null, events: null, counts: {} };
const MAX_PHOTOS = 3;  // photos or camera frames per traveller: the kiosk enrols their mean

const STATE_WORDS = {
  idle: "Free", presenting: "Traveller at the gate", granted: "Boarding: gate open",
  staffed_lane: "Send to staffed lane", wrong_flight: "Not this flight: send to staffed lane",
  refer: "Refer for secondary screening",
  manual: "Manual control", emergency: "EMERGENCY: gates open",
};
// "granted" counts gate openings after a face match; "boarded" counts passages through the
// gate on such a grant (a traveller who turns back is granted but not boarded).
const COUNT_WORDS = {
  enrolled: "Enrolled", refused: "Said no", withdrawn: "Withdrawn",
  granted: "Gate opened by face", boarded: "Boarded by face",
  staffed_lane: "Sent to staffed lane", wrong_flight: "Not this flight",
  refer: "Referred for screening",
  tailgating: "Tailgating alarms", override: "Supervisor overrides",
};
const TIME_24H = { hour: "2-digit", minute: "2-digit", hour12: false };
const DATE_TIME = { weekday: "short", day: "numeric", month: "short", ...TIME_24H };
function when(seconds, opts) { return new Date(seconds * 1000).toLocaleString([], opts || DATE_TIME); }

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  let resp;
  try {
    resp = await fetch(path, { method, headers, credentials: "same-origin",
                               body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw { status: 0, error: "offline", message: "The kiosk cannot reach the gate box. Check the cable and try again." };
  }
  let data = null;
  if (resp.status !== 204) {
    try { data = await resp.json(); } catch (e) { data = null; }
  }
  if (!resp.ok) {
    const err = { status: resp.status, error: (data && data.error) || "error",
                  message: (data && data.message) || ("Something went wrong (" + resp.status + ")."), data };
    if (resp.status === 401 && path !== "/api/session/login" && path !== "/api/session") {
      loggedOut(err.message);
    }
    throw err;
  }
  return data;
}

function show(el, visible) { el.hidden = !visible; }
function cap(text) { text = String(text || ""); return text.charAt(0).toUpperCase() + text.slice(1); }
function say(text, kind) {
  const m = $("message");
  m.textContent = text || "";
  m.dataset.kind = kind || "info";
  show(m, !!text);
}
function showError(id, err) {
  const el = $(id);
  el.textContent = err ? cap(err.message || String(err)) : "";
  show(el, !!err);
}

/* ---------- session ---------- */
function loggedIn(info) {
  state.session = info;
  state.csrf = info.csrf_token;
  $("who-name").textContent = info.staff_id;
  $("who-role").textContent = info.role;
  show($("who"), true);
  show($("login-view"), false);
  show($("tabs"), true);
  show($("tab-enrol"), info.can_enrol);
  show($("tab-withdraw"), info.can_enrol);
  show($("photo-camera"), info.camera);
  document.body.dataset.role = info.role;
  say("");
  if (typeof loadMatching === "function") loadMatching();  // kiosk_token.js: token/both gates
  openView(info.can_enrol && !info.can_override ? "enrol-view" : "board-view");
}

function loggedOut(message) {
  state.session = null; state.csrf = null;
  if (state.events) { state.events.close(); state.events = null; }
  delete document.body.dataset.role;
  show($("who"), false);
  show($("tabs"), false);
  for (const v of document.querySelectorAll(".view")) show(v, false);
  show($("login-view"), true);
  clearBoard();
  if (typeof clearToken === "function") clearToken();
  $("withdraw-value").value = ""; $("withdraw-result").textContent = "";
  $("withdraw-result").dataset.result = "";
  $("login-password").value = "";
  say(message || "", message ? "warn" : "info");
  $("login-staff").focus();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("login-error", null);
  try {
    const info = await api("POST", "/api/session/login",
      { staff_id: $("login-staff").value.trim(), password: $("login-password").value });
    $("login-password").value = "";
    loggedIn(info);
  } catch (err) {
    $("login-password").value = "";
    showError("login-error", err);
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/session/logout"); } catch (e) { /* already gone */ }
  loggedOut("You are logged out.");
});

/* ---------- tabs ---------- */
function openView(id) {
  for (const v of document.querySelectorAll(".view")) show(v, v.id === id);
  for (const t of document.querySelectorAll("#tabs button")) {
    t.setAttribute("aria-current", t.dataset.view === id ? "page" : "false");
  }
  if (id === "board-view") startBoard(); else stopBoard();
  if (id === "enrol-view") resetEnrol();
  if (id === "withdraw-view") { $("withdraw-result").textContent = ""; $("withdraw-value").focus(); }
}
for (const t of document.querySelectorAll("#tabs button")) {
  t.addEventListener("click", () => openView(t.dataset.view));
}

/* ---------- enrolment ---------- */
function step(name) {
  for (const s of document.querySelectorAll("#enrol-view .step")) show(s, s.dataset.step === name);
  $("enrol-view").dataset.step = name;
}

function resetEnrol() {
  state.reference = null; state.photos = []; state.source = null; state.flight = null;
  state.matching = null;
  if (typeof clearToken === "function") clearToken();
  $("enrol-reference").value = ""; $("enrol-flight").value = "";
  $("photo-file").value = "";
  setFeedback(null);
  showError("reference-error", null);
  showError("enrol-error", null);
  step("reference");
  $("enrol-reference").focus();
}

$("reference-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("reference-error", null);
  const value = $("enrol-reference").value.trim();
  if (!value) { showError("reference-error", { message: "Type the booking reference or scan the boarding pass." }); return; }
  try {
    const text = await api("GET", "/api/consent-text");
    state.reference = value;
    state.flight = $("enrol-flight").value.trim() || null;
    state.consentVersion = text.version;
    renderConsent(text);
    if (typeof matchingChoices === "function") matchingChoices();
    step("consent");
    $("consent-text").focus();
  } catch (err) { showError("reference-error", err); }
});

function renderConsent(text) {
  const box = $("consent-text");
  box.replaceChildren();
  box.dataset.version = text.version;
  const h = document.createElement("h3"); h.textContent = text.title; box.append(h);
  for (const s of text.sections) {
    const sec = document.createElement("section");
    sec.dataset.section = s.id;
    const t = document.createElement("h4"); t.textContent = s.title;
    const p = document.createElement("p"); p.textContent = s.body;
    sec.append(t, p); box.append(sec);
  }
}

$("consent-accept").addEventListener("click", () => { step("photo"); $("photo-file").focus(); });

$("consent-refuse").addEventListener("click", async () => {
  state.reference = null;
  try {
    const r = await api("POST", "/api/enrolments/refusal");
    $("refused-message").textContent = r.message;
  } catch (err) { $("refused-message").textContent = "Nothing was stored. Please use the staffed lane."; }
  step("refused");
  $("refused-done").focus();
});

function setFeedback(result, err, label) {
  const fb = $("photo-feedback");
  fb.replaceChildren();
  fb.dataset.ok = "false";
  $("enrol-submit").disabled = true;
  const head = label ? label + ": " : "";
  if (err) { fb.textContent = head + cap(err.message); fb.dataset.kind = "bad"; return; }
  if (!result) { fb.textContent = ""; delete fb.dataset.kind; return; }
  if (result.ok) {
    fb.textContent = head + "Good. Tap Enrol.";
    fb.dataset.ok = "true"; fb.dataset.kind = "good";
    $("enrol-submit").disabled = false;
  } else {
    fb.textContent = head + "Not yet: " + result.advice.join(", ") + ". Take the photo again.";
    fb.dataset.kind = "bad";
  }
}
function progress(text) {
  const fb = $("photo-feedback");
  fb.textContent = text; fb.dataset.kind = "good"; fb.dataset.ok = "false";
  $("enrol-submit").disabled = true;
}
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function readFile(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject({ message: "The photo could not be read. Choose it again." });
    r.readAsDataURL(file);
  });
}

// Each photo is checked on its own (quality feedback per photo); all must be good to enrol.
$("photo-file").addEventListener("change", async () => {
  const files = Array.from($("photo-file").files || []);
  state.photos = []; state.source = "upload";
  if (!files.length) { setFeedback(null); return; }
  if (files.length > MAX_PHOTOS) {
    setFeedback(null, { message: "choose at most " + MAX_PHOTOS + " photos" }); return;
  }
  const photos = [];
  for (let i = 0; i < files.length; i++) {
    const label = files.length > 1 ? "Photo " + (i + 1) + " of " + files.length : "";
    progress((label ? label + ": " : "") + "checking...");
    try {
      const photo = await readFile(files[i]);
      const result = await api("POST", "/api/enrolments/check", { source: "upload", photo });
      if (!result.ok) { setFeedback(result, null, label); return; }
      photos.push(photo);
    } catch (err) { setFeedback(null, err, label); return; }
  }
  state.photos = photos;
  setFeedback({ ok: true, advice: [] }, null, photos.length > 1 ? photos.length + " good photos" : "");
});

// The camera: up to MAX_PHOTOS good frames, with feedback between them; the enrolment then
// takes that many fresh frames itself and enrols their mean.
$("photo-camera").addEventListener("click", async () => {
  state.photos = []; state.source = "camera";
  $("photo-camera").disabled = true;
  let good = 0;
  try {
    for (let tries = 0; good < MAX_PHOTOS && tries < 3 * MAX_PHOTOS; tries++) {
      const label = "Camera photo " + (good + 1) + " of " + MAX_PHOTOS;
      try {
        const result = await api("POST", "/api/enrolments/check", { source: "camera" });
        if (result.ok) { good++; progress(label + ": good" + (good < MAX_PHOTOS ? ", hold still..." : "")); }
        else progress(label + ": " + result.advice.join(", ") + "...");
      } catch (err) { setFeedback(null, err, label); if (err.error === "no_camera") return; }
      await pause(400);
    }
    if (good < MAX_PHOTOS) { setFeedback({ ok: false, advice: ["the camera did not get " + MAX_PHOTOS + " good photos"] }); return; }
    setFeedback({ ok: true, advice: [] }, null, MAX_PHOTOS + " good camera photos");
  } finally { $("photo-camera").disabled = false; }
});

$("enrol-submit").addEventListener("click", async () => {
  showError("enrol-error", null);
  $("enrol-submit").disabled = true;
  const body = { reference: state.reference, consent_accepted: true,
                 consent_version: state.consentVersion, source: state.source || "upload" };
  if (state.flight) body.flight = state.flight;
  if (state.matching) body.matching = state.matching;
  if (body.source === "camera") body.frames = MAX_PHOTOS;
  else if (state.photos.length > 1) body.photos = state.photos;
  else body.photo = state.photos[0];
  try {
    const r = await api("POST", "/api/enrolments", body);
    state.photos = []; state.reference = null; state.flight = null; $("photo-file").value = "";
    // the page's own words: the expiry is shown once, below, in the kiosk's 24-hour format
    $("receipt-message").textContent = "Keep the withdrawal code. With it, or the booking " +
      "reference, you can withdraw at this kiosk at any time.";
    $("receipt-expiry").textContent = when(r.expires_at);
    $("receipt-code").textContent = r.withdrawal_code;
    if (typeof showToken === "function") showToken(r);  // token mode: the traveller's key
    step("receipt");
    $("enrol-done").focus();
  } catch (err) {
    showError("enrol-error", err);
    if (err.error === "consent_text_changed") { step("reference"); }
    else $("enrol-submit").disabled = false;
  }
});

$("enrol-cancel").addEventListener("click", resetEnrol);
$("enrol-done").addEventListener("click", resetEnrol);
$("refused-done").addEventListener("click", resetEnrol);

/* ---------- withdrawal ---------- */
function withdrawKindChanged() {
  const code = $("withdraw-kind-code").checked;
  $("withdraw-value-label").textContent = code ? "Withdrawal code (on the receipt)"
                                               : "Booking reference, or scan the boarding pass";
}
for (const r of document.querySelectorAll("input[name=withdraw-kind]")) {
  r.addEventListener("change", withdrawKindChanged);
}
$("withdraw-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const out = $("withdraw-result");
  const value = $("withdraw-value").value.trim();
  const kind = document.querySelector("input[name=withdraw-kind]:checked").value;
  const body = kind === "code" ? { code: value } : { reference: value };
  if (!value) {
    out.textContent = kind === "code" ? "Type the withdrawal code from the receipt."
                                      : "Type the booking reference or scan the boarding pass.";
    out.dataset.result = "empty"; $("withdraw-value").focus(); return;
  }
  try {
    const r = await api("POST", "/api/withdrawals", body);
    out.textContent = r.message; out.dataset.result = "withdrawn";
    $("withdraw-value").value = "";
  } catch (err) {
    out.textContent = cap(err.message); out.dataset.result = err.error;
    $("withdraw-value").focus();
  }
});

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
  li.dataset.kind = a.kind; li.dataset.lane = a.lane; li.dataset.alertId = a.id;
  const t = when(a.at, TIME_24H);
  li.textContent = t + "  Lane " + a.lane + ": " + a.message;
  $("alerts").prepend(li);
  while ($("alerts").children.length > 20) $("alerts").lastChild.remove();
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
}

function startBoard() {
  if (state.events) return;
  refreshConsents();
  show($("boarding-form"), !!(state.session && state.session.can_override));
  refreshBoarding();
  const es = new EventSource("/api/board/events");
  state.events = es;
  const status = $("board-status");
  es.onopen = () => { status.textContent = "live"; status.dataset.connected = "true"; };
  es.onerror = () => { status.textContent = "reconnecting..."; status.dataset.connected = "false"; };
  es.addEventListener("snapshot", (e) => applySnapshot(JSON.parse(e.data)));
  es.addEventListener("state", (e) => setLane(JSON.parse(e.data)));
  es.addEventListener("alert", (e) => addAlert(JSON.parse(e.data)));
  es.addEventListener("counts", (e) => renderCounts(JSON.parse(e.data).counts));
  es.addEventListener("boarding", (e) => renderBoarding(JSON.parse(e.data).boarding));
  es.addEventListener("pad", (e) => renderPad(JSON.parse(e.data).pad));
  es.addEventListener("session_expired", () => { stopBoard(); loggedOut("Your session has ended: log in again."); });
}

function clearBoard() {
  stopBoard();
  $("lanes").replaceChildren();   // lane cards carry role-specific controls: rebuild per log-in
  $("alerts").replaceChildren();
  $("counts").replaceChildren();
  renderBoarding(null); renderPad(null); show($("boarding-form"), false);
  $("active-consents").textContent = "-"; $("next-expiry").textContent = "-";
}

function stopBoard() {
  if (state.events) { state.events.close(); state.events = null; }
  $("board-status").dataset.connected = "false";
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

/* ---------- start ---------- */
(async () => {
  try { loggedIn(await api("GET", "/api/session")); }
  catch (e) { loggedOut(); }
})();
