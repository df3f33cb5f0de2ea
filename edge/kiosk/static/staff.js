/* The supervisor's staff screen: list staff (role, disabled, locked out), add an account,
   disable or enable it, unlock its failed log-ins and reset its password. Loaded after
   kiosk.js, whose $, api and show it uses. The tab shows for supervisors only (the server
   refuses everyone else with 403 anyway); passwords typed here are sent once and cleared. */
"use strict";

const STAFF_ROLE_WORDS = { agent: "Agent", supervisor: "Supervisor", engineer: "Engineer" };

function staffSay(text, kind) {
  const el = $("staff-result");
  el.textContent = text || "";
  el.dataset.kind = kind || "ok";
}

function staffButton(label, action, name, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls || "secondary";
  b.textContent = label;
  b.dataset.action = action;
  b.setAttribute("aria-label", label + " " + name);
  b.addEventListener("click", () => staffAction(action, name));
  return b;
}

function staffState(row) {
  const parts = [row.disabled ? "Disabled" : "Active"];
  if (row.locked_out) parts.push("locked out (" + row.wait_s + " s, " + row.failures + " failed log-ins)");
  else if (row.failures) parts.push(row.failures + " failed log-in(s)");
  return parts.join(", ");
}

function renderStaff(data) {
  const body = $("staff-rows");
  const choice = $("staff-password-name");
  const keep = choice.value;
  body.replaceChildren();
  choice.replaceChildren();
  for (const row of data.staff) {
    const tr = document.createElement("tr");
    tr.dataset.staff = row.staff_id;
    tr.dataset.disabled = String(row.disabled);
    tr.dataset.locked = String(row.locked_out);
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = row.staff_id + (row.staff_id === data.you ? " (you)" : "");
    const role = document.createElement("td");
    role.textContent = STAFF_ROLE_WORDS[row.role] || row.role;
    const st = document.createElement("td");
    st.className = "staff-state";
    st.textContent = staffState(row);
    const actions = document.createElement("td");
    if (row.locked_out || row.failures) actions.append(staffButton("Unlock", "unlock", row.staff_id, "yes"));
    if (row.disabled) actions.append(staffButton("Enable", "enable", row.staff_id));
    else if (row.staff_id !== data.you) actions.append(staffButton("Disable", "disable", row.staff_id, "no"));
    tr.append(name, role, st, actions);
    body.append(tr);
    const opt = document.createElement("option");
    opt.value = row.staff_id; opt.textContent = row.staff_id;
    choice.append(opt);
  }
  if (keep) choice.value = keep;
  $("staff-view").dataset.loaded = "true";
}

async function loadStaff() {
  try { renderStaff(await api("GET", "/api/staff")); }
  catch (err) { staffSay(err.message, "error"); }
}

async function staffAction(action, name) {
  try {
    const r = await api("POST", "/api/staff/" + action, { staff_id: name });
    staffSay(r.message, "ok");
  } catch (err) { staffSay(err.message, "error"); }
  await loadStaff();
}

$("staff-add-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { staff_id: $("staff-add-name").value.trim(), role: $("staff-add-role").value,
                 password: $("staff-add-password").value };
  $("staff-add-password").value = "";
  try {
    const r = await api("POST", "/api/staff", body);
    $("staff-add-name").value = "";
    staffSay(r.message, "ok");
  } catch (err) { staffSay(err.message, "error"); }
  await loadStaff();
});

$("staff-password-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = { staff_id: $("staff-password-name").value, password: $("staff-password-new").value };
  $("staff-password-new").value = "";
  try { staffSay((await api("POST", "/api/staff/password", body)).message, "ok"); }
  catch (err) { staffSay(err.message, "error"); }
  await loadStaff();
});

$("tab-staff").addEventListener("click", () => { staffSay(""); loadStaff(); });
$("staff-refresh").addEventListener("click", () => { staffSay(""); loadStaff(); });

function staffForRole() {
  const supervisor = document.body.dataset.role === "supervisor";
  show($("tab-staff"), supervisor);
  if (!supervisor) {  // logged out or another role: nothing of the last supervisor's stays
    $("staff-rows").replaceChildren();
    $("staff-password-name").replaceChildren();
    for (const id of ["staff-add-name", "staff-add-password", "staff-password-new"]) $(id).value = "";
    staffSay("");
    delete $("staff-view").dataset.loaded;
  }
}
new MutationObserver(staffForRole).observe(document.body, { attributes: true, attributeFilter: ["data-role"] });
staffForRole();
