// One certificate: what it is, its versions, its renewal history and
// deliveries, and the actions the caller may take: renew, revoke (with a
// reason, after a confirmation naming it) and download.

import { ApiError, get, operationIdFrom, optional, post, request } from "../api.js";
import { initShell } from "../shell.js";
import { announce, badge, byId, h, setText, show } from "../dom.js";
import {
  describeKey, duration, expiryState, formatDate, formatDateTime, kindLabel, parseTime, relativeDays,
  renewalPoint, statusLabel,
} from "../format.js";
import { watchOperation } from "../operation-view.js";

const me = await initShell();
const name = decodeURIComponent(location.pathname.split("/")[2] || "");
const path = encodeURIComponent(name);
let current = null; // the certificate item
let busy = false;

byId("cert-title").textContent = name;
document.title = name + " · certkeeper";

await load();
setUpActions();

async function load() {
  let certs;
  try {
    certs = (await get("/api/certificates")).data;
  } catch (err) {
    setText(byId("load-error"), "The certificate could not be loaded: " + err.message);
    return;
  }
  current = certs.find((c) => c.name === name) || null;
  if (!current) {
    setText(byId("load-error"), "There is no certificate named " + name + ".");
    show(byId("cert"), false);
    return;
  }
  setText(byId("load-error"), "");
  const [versions, ops, renewals] = await Promise.all([
    optional("/api/certificates/" + path + "/versions"),
    optional("/api/operations?certificate=" + path + "&limit=50"),
    optional("/api/renewals"),
  ]);
  facts(current);
  permissions(current);
  versionRows(versions);
  history(ops, renewals);
  deliveries(current);
  show(byId("cert"), true);
}

function facts(c) {
  const now = new Date();
  const expires = parseTime(c.expiresOn);
  const state = expiryState(c, now);
  const rows = [
    ["DNS names", h("ul", { class: "dns-names" }, c.dnsNames.map((n) => h("li", {}, n)))],
    ["State", badge(state.text, state.state)],
    ["Expires", expires ? [h("time", { datetime: c.expiresOn }, formatDateTime(expires)), " ", badge(relativeDays(expires, now), state.state)] : "—"],
    ["Issued", formatDateTime(parseTime(c.createdOn))],
    ["DNS provider", c.dnsProviderName || "—"],
    ["Key", describeKey(c) + (c.reuseKey ? ", kept across renewals" : ", new at each renewal")],
    ["CA", [c.acmeEndpoint || "—", c.isSameEndpoint ? null : " (not the CA configured now)"]],
    ["Serial number", h("code", {}, c.serialNumber || "—")],
    ["Thumbprint (SHA-1)", h("code", { class: "wrap" }, c.x509Thumbprint || "—")],
  ];
  if (c.dnsAlias) rows.push(["DNS alias", c.dnsAlias]);
  byId("facts").replaceChildren(...rows.map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))));
}

function permissions(c) {
  show(byId("renew"), me.canIssue);
  show(byId("revoke"), me.canRevoke && !c.revoked);
  show(byId("download-form"), me.canReadCertificate);
  const missing = [];
  if (!me.canIssue) missing.push("renew (role Acmebot.IssueCertificate)");
  if (!me.canRevoke) missing.push("revoke (role Acmebot.RevokeCertificate)");
  if (!me.canReadCertificate) missing.push("download private keys (role Certkeeper.ReadCertificate)");
  setText(byId("not-allowed"), missing.length ? "Your sign-in may not " + joinOr(missing) + "." : "");
}

function joinOr(list) {
  return list.length < 2 ? list.join("") : list.slice(0, -1).join(", ") + " or " + list[list.length - 1];
}

function versionRows(versions) {
  const body = byId("versions");
  if (!versions) {
    body.replaceChildren();
    setText(byId("versions-note"), "This server does not list versions; the newest is shown above.");
    return;
  }
  setText(byId("versions-note"), "");
  body.replaceChildren(...versions.map((v, i) => {
    const from = parseTime(v.notBefore);
    const until = parseTime(v.notAfter);
    const stateText = v.revoked ? "Revoked" : i === 0 ? "Current" : "Superseded";
    const chain = v.issuerChain && v.issuerChain.length
      ? h("ol", { class: "chain" }, v.issuerChain.map((n) => h("li", {}, n))) : "—";
    return h("tr", { "data-version": v.id },
      h("td", { "data-label": "Issued" }, formatDateTime(parseTime(v.createdOn))),
      h("td", { "data-label": "Serial number" }, h("code", { class: "wrap" }, v.serialNumber)),
      h("td", { "data-label": "Valid" }, formatDate(from) + " – " + formatDate(until)),
      h("td", { "data-label": "Thumbprint (SHA-1)" }, h("code", { class: "wrap" }, v.x509Thumbprint)),
      h("td", { "data-label": "Issuer chain" }, chain),
      h("td", { "data-label": "State" }, badge(stateText, v.revoked ? "revoked" : i === 0 ? "ok" : "")));
  }));
}

function history(ops, renewals) {
  const reported = Array.isArray(renewals) ? renewals.find((r) => r.certificateName === name) : null;
  const status = byId("renewal-status");
  if (reported) {
    const next = parseTime(reported.nextCheck);
    status.textContent = "Automatic renewal: " + (reported.status || reported.statusKind || "—") +
      (reported.message ? " — " + reported.message : "") + (next ? ". Next check " + formatDateTime(next) + "." : ".");
  } else if (current.revoked) {
    status.textContent = "Revoked: renew to get a new certificate under this name.";
  } else {
    const due = renewalPoint(current);
    status.textContent = "This server does not report renewal plans (GET /api/renewals); by its lifetime this certificate is due about " +
      formatDateTime(due) + ".";
  }
  const body = byId("history");
  if (!ops) {
    body.replaceChildren();
    setText(byId("history-note"), "This server does not list operations.");
    return;
  }
  setText(byId("history-note"), ops.length ? "" : "No issue or renewal recorded.");
  body.replaceChildren(...ops.map((op) => {
    const created = parseTime(op.createdAt);
    const updated = parseTime(op.updatedAt);
    const done = op.status === "succeeded" || op.status === "failed";
    const detail = op.status === "failed"
      ? h("span", { class: "step-error" }, (op.failedStep ? op.failedStep + ": " : "") + (op.error || ""))
      : op.currentStep || (done ? "" : statusLabel(op.status));
    return h("tr", { "data-operation": op.id },
      h("td", { "data-label": "Started" }, formatDateTime(created)),
      h("td", { "data-label": "What" }, kindLabel(op.kind)),
      h("td", { "data-label": "Result" }, badge(statusLabel(op.status), { succeeded: "ok", failed: "critical" }[op.status] || "running")),
      h("td", { "data-label": "Took" }, done && created && updated ? duration(updated - created) : "—"),
      h("td", { "data-label": "Detail" }, detail, " ", h("a", { href: "/operations/" + op.id }, "Steps")));
  }));
}

// deliveries shows where the certificate was delivered, when the server
// reports it (the "deliveries" or "destinations" of the item); otherwise
// that it is kept in certkeeper's own store only.
function deliveries(c) {
  const list = c.deliveries || c.destinations;
  const box = byId("deliveries");
  if (!Array.isArray(list) || list.length === 0) {
    box.replaceChildren(h("p", { class: "muted" },
      "Kept in certkeeper's built-in store (every version, private keys encrypted). " +
      "No other destination is reported for this certificate."));
    return;
  }
  box.replaceChildren(h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Destination", "Delivered version", "When", "Last error"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, list.map((d) => h("tr", {},
      h("td", { "data-label": "Destination" }, d.destination || d.name || "—"),
      h("td", { "data-label": "Delivered version" }, h("code", {}, d.deliveredVersion || d.versionId || d.version || "—")),
      h("td", { "data-label": "When" }, formatDateTime(parseTime(d.deliveredAt || d.deliveredOn || d.time))),
      h("td", { "data-label": "Last error" }, d.lastError || d.error || "—")))))));
}

function setUpActions() {
  const renewButton = byId("renew");
  renewButton.addEventListener("click", async () => {
    if (busy) return;
    busy = true;
    renewButton.disabled = true;
    setText(byId("action-error"), "");
    try {
      const res = await post("/api/certificate/" + path + "/renew", undefined);
      const id = operationIdFrom(res.headers.get("Location"));
      const result = await watchOperation(id, byId("live-operation"));
      if (result && result.op.status === "succeeded") await load();
    } catch (err) {
      setText(byId("action-error"), "The renewal could not be started: " + err.message);
    } finally {
      busy = false;
      renewButton.disabled = false;
    }
  });

  const dialog = byId("revoke-dialog");
  const reason = byId("revoke-reason");
  byId("revoke").addEventListener("click", () => {
    for (const el of dialog.querySelectorAll(".cert-name")) el.textContent = name;
    byId("revoke-serial").textContent = current.serialNumber || "";
    setText(byId("revoke-error"), "");
    reason.value = "unspecified";
    dialog.showModal();
    reason.focus();
  });
  byId("revoke-cancel").addEventListener("click", () => dialog.close());
  byId("revoke-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const confirm = byId("revoke-confirm");
    confirm.disabled = true;
    setText(byId("revoke-error"), "");
    try {
      await post("/api/certificate/" + path + "/revoke", { reason: reason.value });
      dialog.close();
      announce(name + " was revoked.");
      await load();
      byId("cert-title").focus();
    } catch (err) {
      const detail = err instanceof ApiError && err.fieldErrors ? Object.values(err.fieldErrors).flat().join(" ") : err.message;
      setText(byId("revoke-error"), "The CA did not revoke it: " + detail);
    } finally {
      confirm.disabled = false;
    }
  });

  byId("download-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const format = byId("download-format").value;
    setText(byId("action-error"), "");
    show(byId("pfx-password"), false);
    try {
      const res = await request("GET", "/api/certificates/" + path + "/download?format=" + format, { raw: true });
      const blob = await res.response.blob();
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: name + "." + format, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      if (format === "pfx") {
        byId("pfx-password-value").textContent = res.headers.get("X-Pfx-Password") || "";
        show(byId("pfx-password"), true);
      }
      announce("Downloaded " + name + "." + format + ".");
    } catch (err) {
      setText(byId("action-error"), "The download failed: " + err.message);
    }
  });
}
