/* Token mode on the kiosk page (settings matching.mode "token" or "both"): the traveller's
   choice of how to board, the receipt's boarding key (QR code, text, PDF) and the lane board's
   keyboard-wedge scanner. Loaded after kiosk.js, whose $, api, state, step, show, say and cap
   it uses. The key is shown once and dropped from the page at "Done", at log-out and at the
   next enrolment; the PDF lives in a blob URL revoked at the same moments. */
"use strict";

state.matching = null; state.matchingInfo = null; state.pdfUrl = null;

async function loadMatching() {
  try { state.matchingInfo = await api("GET", "/api/matching"); }
  catch (e) { state.matchingInfo = null; }
  tokenForm();
  return state.matchingInfo;
}

// A "both" gate: the traveller picks one of two agree buttons (the consent text says what each
// means); a gallery or token gate keeps the single "I agree" (the gate's own way).
function matchingChoices() {
  const both = !!(state.matchingInfo && state.matchingInfo.mode === "both");
  show($("consent-accept"), !both);
  show($("consent-accept-token"), both);
  show($("consent-accept-gallery"), both);
}
for (const [id, choice] of [["consent-accept-token", "token"], ["consent-accept-gallery", "gallery"]]) {
  $(id).addEventListener("click", () => { state.matching = choice; step("photo"); $("photo-file").focus(); });
}

function showToken(r) {
  clearToken();
  if (!r || !r.token) return;
  $("receipt-token-text").textContent = r.token;
  if (r.token_qr_svg) {  // made here, so no page without a token receipt holds an image
    const img = document.createElement("img");
    img.alt = "QR code of the traveller's boarding key"; img.width = 270; img.height = 270;
    img.src = r.token_qr_svg;
    $("receipt-qr").replaceChildren(img);
  }
  if (r.receipt_pdf) {
    const bytes = Uint8Array.from(atob(r.receipt_pdf), (c) => c.charCodeAt(0));
    state.pdfUrl = URL.createObjectURL(new Blob([bytes], { type: "application/pdf" }));
    $("receipt-pdf").href = state.pdfUrl;
    show($("receipt-pdf"), true);
  }
  // the traveller's language (kiosk.js state.text); English only if the words are missing
  $("receipt-message").textContent = (state.text && state.text.receipt.token_message) ||
    "This QR code is your boarding key: show it at the gate. It is the only copy (we keep " +
    "none): print the receipt or photograph the code. Keep the withdrawal code too.";
  show($("receipt-token"), true);
}

function clearToken() {
  $("receipt-token-text").textContent = "";
  $("receipt-qr").replaceChildren();
  if (state.pdfUrl) URL.revokeObjectURL(state.pdfUrl);
  state.pdfUrl = null;
  $("receipt-pdf").removeAttribute("href");
  show($("receipt-pdf"), false);
  show($("receipt-token"), false);
}

// The lane board's keyboard-wedge scanner: it types the key into the field and presses Enter.
function tokenForm() {
  const info = state.matchingInfo;
  const on = !!(info && info.kiosk_scan && state.session && state.session.can_enrol);
  show($("token-form"), on);
  if (!on) return;
  const sel = $("token-lane");
  sel.replaceChildren(...info.lanes.map((lane) => new Option("Lane " + lane, lane)));
}

$("token-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("token-input");
  const value = input.value.trim();
  input.value = "";
  if (!value) { input.focus(); return; }
  try {
    const r = await api("POST", "/api/lanes/" + encodeURIComponent($("token-lane").value) + "/token",
                        { token: value });
    say(r.message, "info");
  } catch (err) { say(cap(err.message), "warn"); }
  input.focus();
});
