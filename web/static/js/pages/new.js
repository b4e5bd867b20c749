// Adding a certificate: names built from a zone and a record name, key
// choices, and the request, followed live. The form refuses what the API
// would refuse with the API's own messages: the few rules checked here
// before sending use the API's wording, and every other refusal is the
// API's 400 answer shown next to its field.

import { ApiError, get, operationIdFrom, post } from "../api.js";
import { initShell } from "../shell.js";
import { announce, byId, certificateLink, h, setText, show } from "../dom.js";
import { toASCII } from "../format.js";
import { watchOperation } from "../operation-view.js";

const me = await initShell();
const form = byId("new-form");
const zoneSelect = byId("zone");
const record = byId("record");
const names = []; // {name, provider, zone}
let zones = []; // {provider, zone}

// Where each API field's messages are shown.
const fieldTargets = {
  DnsNames: { error: "dnsnames-error", focus: "record" },
  DnsProviderName: { error: "dnsnames-error", focus: "zone" },
  CertificateName: { error: "certificate-name-error", focus: "certificate-name" },
  KeyType: { error: "key-type-error", focus: "key-type" },
  KeySize: { error: "key-size-error", focus: "key-size" },
  KeyCurveName: { error: "key-curve-error", focus: "key-curve" },
  DnsAlias: { error: "dns-alias-error", focus: "dns-alias", open: true },
  Profile: { error: "profile-error", focus: "profile", open: true },
};

if (!me.canIssue) {
  show(byId("not-allowed"), true);
  show(form, false);
} else {
  await loadZones();
}

async function loadZones() {
  try {
    const groups = (await get("/api/dns-zones")).data;
    zones = groups.flatMap((g) => g.dnsZones.map((z) => ({ provider: g.dnsProviderName, zone: z.name })));
    const byProvider = groups.filter((g) => g.dnsZones.length > 0).map((g) => h("optgroup", { label: g.dnsProviderName },
      g.dnsZones.map((z) => h("option", { value: String(zones.findIndex((x) => x.provider === g.dnsProviderName && x.zone === z.name)) }, z.name))));
    zoneSelect.replaceChildren(...byProvider);
    if (zones.length === 0) setText(byId("dnsnames-error"), "No DNS zone is configured: add a DNS provider to certkeeper's configuration.");
  } catch (err) {
    setText(byId("form-error"), "The DNS zones could not be loaded: " + err.message);
  }
  preview();
}

function selectedZone() {
  return zones[Number(zoneSelect.value)] || null;
}

// fqdn is the name the record input and the zone make.
function fqdn() {
  const z = selectedZone();
  if (!z) return "";
  const r = record.value.trim().replace(/\.$/, "");
  if (r === "" || r === "@") return z.zone;
  if (r.toLowerCase() === z.zone || r.toLowerCase().endsWith("." + z.zone)) return r;
  return r + "." + z.zone;
}

function preview() {
  const name = fqdn();
  const ascii = name ? toASCII(name) : null;
  const out = byId("record-preview");
  if (!name) out.textContent = "";
  else if (ascii && ascii !== name.toLowerCase()) out.textContent = "Will be requested as " + ascii + ".";
  else out.textContent = "Adds " + name + ".";
}

record.addEventListener("input", preview);
zoneSelect.addEventListener("change", preview);
byId("add-name").addEventListener("click", addName);

function addName() {
  const z = selectedZone();
  clearFieldError("DnsNames");
  if (!z) return;
  const raw = fqdn();
  const name = toASCII(raw) || raw;
  if (names.length > 0 && names[0].provider !== z.provider) {
    fieldError("DnsNames", ["All DNS names of one certificate must be in zones of one DNS provider: " +
      names[0].name + " is in " + names[0].provider + "'s zone " + names[0].zone + ", " + name + " would be in " +
      z.provider + "'s zone " + z.zone + "."]);
    return;
  }
  if (names.some((n) => n.name === name)) {
    fieldError("DnsNames", ["The DnsNames has '" + name + "' more than once."]);
    return;
  }
  names.push({ name, provider: z.provider, zone: z.zone });
  record.value = "";
  preview();
  renderNames();
  announce("Added " + name + ".");
  record.focus();
}

function renderNames() {
  byId("names").replaceChildren(...names.map((n, i) => h("li", { class: "name-chip" },
    h("span", {}, n.name), h("span", { class: "muted" }, " · " + n.provider),
    h("button", {
      type: "button", class: "button-link", "aria-label": "Remove " + n.name,
      onclick: () => {
        names.splice(i, 1);
        renderNames();
        announce("Removed " + n.name + ".");
        record.focus();
      },
    }, "Remove"))));
  show(byId("names-empty"), names.length === 0);
}

const keyType = byId("key-type");
keyType.addEventListener("change", () => {
  show(byId("key-size-field"), keyType.value === "RSA");
  show(byId("key-curve-field"), keyType.value === "EC");
});

function clearFieldError(field) {
  const t = fieldTargets[field];
  if (!t) return;
  setText(byId(t.error), "");
  byId(t.focus).removeAttribute("aria-invalid");
}

function fieldError(field, messages) {
  const t = fieldTargets[field];
  if (!t) return false;
  const el = byId(t.error);
  el.textContent = [el.textContent, ...messages].filter(Boolean).join(" ");
  el.hidden = false;
  byId(t.focus).setAttribute("aria-invalid", "true");
  if (t.open) form.querySelector("details.advanced").open = true;
  return true;
}

// showErrors shows messages by API field name, each next to its field and
// all in the summary at the top, which takes focus.
function showErrors(errors) {
  const items = [];
  const formLevel = [];
  for (const [field, messages] of Object.entries(errors)) {
    if (fieldError(field, messages)) {
      for (const m of messages) items.push(h("li", {}, h("a", { href: "#" + fieldTargets[field].focus }, m)));
    } else {
      formLevel.push(...messages);
      for (const m of messages) items.push(h("li", {}, m));
    }
  }
  setText(byId("form-error"), formLevel.join(" "));
  byId("error-list").replaceChildren(...items);
  const summary = byId("error-summary");
  show(summary, items.length > 0);
  if (items.length > 0) summary.focus();
}

function clearErrors() {
  for (const field of Object.keys(fieldTargets)) clearFieldError(field);
  setText(byId("form-error"), "");
  show(byId("error-summary"), false);
}

byId("error-list").addEventListener("click", (event) => {
  const a = event.target.closest("a[href^='#']");
  if (!a) return;
  event.preventDefault();
  byId(a.getAttribute("href").slice(1)).focus();
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  // Enter in the record name adds the name; it does not send the form.
  if (document.activeElement === record) {
    addName();
    return;
  }
  clearErrors();
  const certificateName = byId("certificate-name").value.trim();
  const errors = {};
  if (names.length === 0) errors.DnsNames = ["The DnsNames is required."];
  if (certificateName !== "") {
    const msgs = [];
    if (!/^[0-9A-Za-z-]*$/.test(certificateName)) msgs.push("The field CertificateName must match the regular expression '^[0-9a-zA-Z-]+$'.");
    if (certificateName.length > 127) msgs.push("The CertificateName must be at most 127 characters long.");
    if (msgs.length) errors.CertificateName = msgs;
  }
  if (Object.keys(errors).length > 0) {
    showErrors(errors);
    return;
  }
  const body = {
    dnsNames: names.map((n) => n.name),
    dnsProviderName: names[0].provider,
    keyType: keyType.value,
    reuseKey: byId("reuse-key").checked,
  };
  if (certificateName) body.certificateName = certificateName;
  if (keyType.value === "RSA") body.keySize = Number(byId("key-size").value);
  else body.keyCurveName = byId("key-curve").value;
  const alias = byId("dns-alias").value.trim();
  if (alias) body.dnsAlias = alias;
  const profile = byId("profile").value.trim();
  if (profile) body.profile = profile;

  const submit = byId("submit");
  submit.disabled = true;
  try {
    const res = await post("/api/certificate", body);
    const id = operationIdFrom(res.headers.get("Location"));
    names.length = 0;
    renderNames();
    byId("certificate-name").value = "";
    const result = byId("result");
    show(result, true);
    const live = byId("live-operation");
    const done = await watchOperation(id, live);
    if (done && done.op.status === "succeeded") {
      live.append(h("p", { class: "notice" }, "Issued. ", certificateLink(done.op.certificateName), " is ready."));
    }
  } catch (err) {
    if (err instanceof ApiError && err.fieldErrors) showErrors(err.fieldErrors);
    else if (err instanceof ApiError && err.status === 403) showErrors({ $: ["Your sign-in may not issue certificates (role Acmebot.IssueCertificate)."] });
    else showErrors({ $: ["The request failed: " + err.message] });
  } finally {
    submit.disabled = false;
  }
});
