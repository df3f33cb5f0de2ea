/* Staff kiosk page: log in, enrol with consent, withdraw, live lane board.
   Plain JavaScript, no build step. The page never shows a whole photo: a chosen file is read,
   sent once as base64 and dropped; the agent sees only a crop of the face found, drawn here
   from that file and the box the server returns (no response carries pixels). The traveller's
   screens (consent, refusal, receipt) are in the language chosen on screen, with the words
   the server versions together with the consent text. Every change sends the CSRF token. */
"use strict";

const $ = (id) => document.getElementById(id);
const state = { csrf: null, session: null, consentVersion: null, reference: null,
                flight: null, photos: [], source: null, events: null, counts: {},
                language: "en", text: null, limits: null };
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
function when(seconds, opts, language) {
  return new Date(seconds * 1000).toLocaleString(language ? [language] : [], opts || DATE_TIME);
}

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
  loadLimits();
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
  clearPreview();
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

async function loadLimits() {
  try { state.limits = await api("GET", "/api/enrolments/limits"); } catch (e) { state.limits = null; }
}

function resetEnrol() {
  state.reference = null; state.photos = []; state.source = null; state.flight = null;
  state.matching = null; state.language = "en"; state.text = null;
  clearPreview();
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
  if (!value) { showError("reference-error", { message: "Type the booking reference or scan the boarding pass." }); $("enrol-reference").focus(); return; }
  const flight = $("enrol-flight").value.trim() || null;
  try {  // step 1 on its own: a reference the kiosk cannot use never reaches the consent text
    const body = { reference: value };
    if (flight) body.flight = flight;
    await api("POST", "/api/enrolments/reference", body);
  } catch (err) {
    showError("reference-error", err);
    $(err.error === "bad_reference" && flight && /flight/i.test(err.message || "") ? "enrol-flight" : "enrol-reference").focus();
    return;
  }
  try {
    state.reference = value;
    state.flight = flight;
    state.language = "en";
    await loadConsent(state.language);
    if (typeof matchingChoices === "function") matchingChoices();
    step("consent");
    $("consent-text").focus();
  } catch (err) { showError("reference-error", err); }
});

async function loadConsent(language) {
  const text = await api("GET", "/api/consent-text?lang=" + encodeURIComponent(language));
  state.text = text; state.language = text.language; state.consentVersion = text.version;
  renderConsent(text);
  return text;
}

// The traveller's language: one button per language, each named in its own language.
function renderLanguages(text) {
  const box = $("consent-languages");
  box.replaceChildren();
  const label = document.createElement("span"); label.className = "languages-label";
  label.id = "consent-languages-label"; label.textContent = text.screen.language;
  box.append(label);
  box.setAttribute("aria-labelledby", "consent-languages-label");
  for (const l of text.languages) {
    const b = document.createElement("button"); b.type = "button";
    b.id = "lang-" + l.code; b.lang = l.code; b.textContent = l.label;
    b.className = "secondary language";
    b.setAttribute("aria-pressed", String(l.code === text.language));
    b.addEventListener("click", async () => {
      try { await loadConsent(l.code); $("lang-" + l.code).focus(); }
      catch (err) { say(cap(err.message), "warn"); }
    });
    box.append(b);
  }
}

/* Traveller-facing words of the chosen language on the consent, refusal and receipt steps:
   element id -> [section, key] of the i18n file. */
const TRAVELLER_WORDS = [
  ["consent-accept", "screen", "agree"], ["consent-accept-token", "screen", "agree_token"],
  ["consent-accept-gallery", "screen", "agree_gallery"], ["consent-refuse", "screen", "refuse"],
  ["consent-back", "screen", "back"], ["refused-title", "screen", "refused_title"],
  ["refused-message", "screen", "refused"], ["refused-done", "screen", "done"],
  ["receipt-title", "receipt", "title"], ["receipt-expiry-label", "receipt", "valid_until"],
  ["receipt-code-label", "receipt", "code"], ["receipt-token-title", "receipt", "token_title"],
  ["receipt-token-hint", "receipt", "token_hint"], ["receipt-pdf", "receipt", "pdf_link"],
  ["receipt-gate-title", "receipt", "at_the_gate"], ["enrol-done", "screen", "done"],
];

function travellerWords(text) {
  for (const id of ["enrol-step-consent", "enrol-step-refused", "enrol-step-receipt"]) $(id).lang = text.language;
  for (const [id, section, key] of TRAVELLER_WORDS) $(id).textContent = text[section][key];
  const lanes = $("receipt-lanes");
  lanes.replaceChildren();
  for (const key of ["granted", "staffed_lane", "wrong_flight"]) {
    const li = document.createElement("li"); li.dataset.lane = key;
    li.textContent = text.lanes[key]; lanes.append(li);
  }
}

function renderConsent(text) {
  renderLanguages(text);
  travellerWords(text);
  const box = $("consent-text");
  box.replaceChildren();
  box.dataset.version = text.version;
  box.dataset.language = text.language;
  box.lang = text.language;
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

// Back to the reference step, what was typed kept (nothing was stored yet)
$("consent-back").addEventListener("click", () => { step("reference"); $("enrol-reference").focus(); });

$("consent-refuse").addEventListener("click", async () => {
  state.reference = null;
  try { await api("POST", "/api/enrolments/refusal"); }
  catch (err) { /* nothing is stored either way */ }
  step("refused");  // the words, in the traveller's language, were set with the consent text
  $("refused-done").focus();
});

/* ---------- the agent's preview: a crop of the face found, drawn from the local file ---------- */
function clearPreview() {
  const box = $("photo-preview");
  for (const c of box.querySelectorAll("canvas")) { c.width = 0; c.height = 0; }
  box.replaceChildren();
  show(box, false);
}

function loadImage(dataUrl) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("unreadable"));
    img.src = dataUrl;
  });
}

async function addPreview(dataUrl, result, label) {
  if (!result.box || !result.width || !result.height) return;
  let img;
  try { img = await loadImage(dataUrl); } catch (e) { return; }
  // the browser's decoded size can differ from the server's (orientation): scale the box
  const sx = img.naturalWidth / result.width, sy = img.naturalHeight / result.height;
  const [x, y, w, h] = result.box;
  const m = 0.25;  // a margin around the box, so the agent sees the whole head
  const cx = Math.max(0, (x - m * w) * sx), cy = Math.max(0, (y - m * h) * sy);
  const cw = Math.min(img.naturalWidth - cx, (1 + 2 * m) * w * sx);
  const ch = Math.min(img.naturalHeight - cy, (1 + 2 * m) * h * sy);
  const size = 160;
  const canvas = document.createElement("canvas");
  canvas.width = size; canvas.height = Math.max(1, Math.round(size * ch / Math.max(1, cw)));
  canvas.getContext("2d").drawImage(img, cx, cy, cw, ch, 0, 0, canvas.width, canvas.height);
  img.src = "";
  const fig = document.createElement("figure"); fig.className = "face-preview";
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", "Face found" + (label ? " in " + label.toLowerCase() : ""));
  const cap_ = document.createElement("figcaption");
  cap_.textContent = "Face found" + (label ? ": " + label.toLowerCase() : "");
  fig.append(canvas, cap_);
  $("photo-preview").append(fig);
  show($("photo-preview"), true);
}

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
  clearPreview();
  if (!files.length) { setFeedback(null); return; }
  if (files.length > MAX_PHOTOS) {
    setFeedback(null, { message: "choose at most " + MAX_PHOTOS + " photos" }); return;
  }
  const photos = [];
  for (let i = 0; i < files.length; i++) {
    const label = files.length > 1 ? "Photo " + (i + 1) + " of " + files.length : "";
    const limit = state.limits && state.limits.max_upload_bytes;
    if (limit && files[i].size > limit) {  // the server's limit and words, before any upload
      setFeedback(null, { message: "the photo is " + (files[i].size / 1e6).toFixed(1) +
        " MB, over this kiosk's limit of " + state.limits.max_upload_words +
        " for one photo: take a smaller photo (a lower resolution on the camera, or a phone's 'medium' size)" }, label);
      return;
    }
    progress((label ? label + ": " : "") + "checking...");
    try {
      const photo = await readFile(files[i]);
      const result = await api("POST", "/api/enrolments/check", { source: "upload", photo });
      await addPreview(photo, result, label);
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
  clearPreview();  // camera frames never reach the page: no preview
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
                 consent_version: state.consentVersion, consent_language: state.language,
                 source: state.source || "upload" };
  if (state.flight) body.flight = state.flight;
  if (state.matching) body.matching = state.matching;
  if (body.source === "camera") body.frames = MAX_PHOTOS;
  else if (state.photos.length > 1) body.photos = state.photos;
  else body.photo = state.photos[0];
  try {
    const r = await api("POST", "/api/enrolments", body);
    state.photos = []; state.reference = null; state.flight = null; $("photo-file").value = "";
    clearPreview();
    // the traveller's words: the expiry is shown once, below, in the kiosk's 24-hour format
    $("receipt-message").textContent = state.text ? state.text.receipt.message :
      "Keep the withdrawal code. With it, or the booking reference, you can withdraw at this kiosk at any time.";
    $("receipt-expiry").textContent = when(r.expires_at, DATE_TIME, state.language);
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

/* ---------- start ---------- */
// After every deferred script (board.js, kiosk_token.js, staff.js) has run: the session
// answer can otherwise arrive while board.js is still loading, and loggedIn/loggedOut use it.
document.addEventListener("DOMContentLoaded", async () => {
  try { loggedIn(await api("GET", "/api/session")); }
  catch (e) { loggedOut(); }
});
