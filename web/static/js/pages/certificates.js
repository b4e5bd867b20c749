// The certificate list: an overview strip, filters, and the certificates
// grouped as Acmebot groups them, sortable by name, zone, provider and
// expiry. The list refreshes itself, quickly while an operation runs.

import { get, optional } from "../api.js";
import { every, initShell } from "../shell.js";
import { badge, byId, certificateLink, h, s, setText, show } from "../dom.js";
import {
  day, describeKey, expiryState, formatDate, formatDateTime, parseTime, relativeDays, renewalPoint, zoneOf,
} from "../format.js";

await initShell();

const groups = [
  { id: "managed", title: "Managed by certkeeper", note: "", test: (c) => c.isIssuedByAcmebot && c.isSameEndpoint },
  {
    id: "other-ca", title: "Issued through another CA",
    note: "Issued by certkeeper through a CA endpoint other than the one configured now; renewals use the configured CA.",
    test: (c) => c.isIssuedByAcmebot && !c.isSameEndpoint,
  },
  { id: "unmanaged", title: "Not managed", note: "Found in the store but not issued by certkeeper; it is not renewed.", test: (c) => !c.isIssuedByAcmebot },
];
const sortKeys = ["name", "zone", "provider", "expiry"];
const params = new URLSearchParams(location.search);
const view = {
  q: params.get("q") || "",
  zone: params.get("zone") || "",
  provider: params.get("provider") || "",
  expiry: params.get("expiry") || "",
  sort: sortKeys.includes(params.get("sort")) ? params.get("sort") : "name",
  dir: params.get("dir") === "desc" ? -1 : 1,
};
let rows = []; // certificates with what is derived for showing them
let renewalsReported = false;

const inputs = {
  q: byId("filter-text"), zone: byId("filter-zone"), provider: byId("filter-provider"), expiry: byId("filter-expiry"),
};
inputs.q.value = view.q;
inputs.expiry.value = view.expiry;
for (const [key, input] of Object.entries(inputs)) {
  input.addEventListener(key === "q" ? "input" : "change", () => {
    view[key] = input.value;
    render();
  });
}
byId("filters").addEventListener("submit", (e) => e.preventDefault());

every(async () => {
  const now = new Date();
  let certs;
  try {
    certs = (await get("/api/certificates")).data;
    setText(byId("load-error"), "");
  } catch (err) {
    setText(byId("load-error"), "The certificates could not be loaded: " + err.message);
    return 10000;
  }
  const [zoneGroups, ops, renewals] = await Promise.all([
    optional("/api/dns-zones"), optional("/api/operations?limit=200"), optional("/api/renewals"),
  ]);
  renewalsReported = Array.isArray(renewals);
  rows = certs.map((c) => derive(c, zoneGroups || [], ops || [], renewals || [], now));
  fillSelect(inputs.zone, "All zones", rows.map((r) => r.zone), view.zone);
  fillSelect(inputs.provider, "All providers", rows.map((r) => r.item.dnsProviderName), view.provider);
  overview(rows, now);
  render();
  const busy = (ops || []).some((op) => op.status === "pending" || op.status === "running");
  return busy ? 2000 : 15000;
});

// derive adds to certificate c what the list shows about it.
function derive(c, zoneGroups, ops, renewals, now) {
  const own = zoneGroups.find((g) => g.dnsProviderName === c.dnsProviderName);
  const zones = (own ? own.dnsZones : zoneGroups.flatMap((g) => g.dnsZones)).map((z) => z.name);
  const expires = parseTime(c.expiresOn);
  const latest = ops.find((op) => op.certificateName === c.name);
  const reported = renewals.find((r) => r.certificateName === c.name) || null;
  let renewal;
  if (reported) {
    const failed = /fail|error|attention/i.test(reported.statusKind || reported.status || "");
    renewal = {
      text: reported.status || reported.statusKind || "—", failed, message: reported.message || "",
      next: parseTime(reported.nextCheck), estimated: false,
    };
  } else {
    renewal = { text: "Up to date", failed: false, message: "", next: renewalPoint(c), estimated: true };
    if (latest && (latest.status === "pending" || latest.status === "running")) {
      renewal.text = latest.kind === "renew" ? "Renewing…" : "Issuing…";
    } else if (latest && latest.status === "failed") {
      renewal.text = (latest.kind === "renew" ? "Last renewal failed" : "Last issue failed");
      renewal.failed = true;
      renewal.message = (latest.failedStep ? latest.failedStep + ": " : "") + (latest.error || "");
    }
    if (c.revoked) {
      renewal.text = "Revoked; renew to replace it";
      renewal.next = null;
    }
  }
  return {
    item: c, zone: zoneOf(c.dnsNames[0] || "", zones), expires, expiry: expiryState(c, now), renewal,
    search: [c.name, ...c.dnsNames].join(" ").toLowerCase(),
  };
}

function fillSelect(select, allLabel, values, selected) {
  const unique = [...new Set(values.filter(Boolean))].sort();
  if (selected && !unique.includes(selected)) unique.push(selected);
  const current = [...select.options].slice(1).map((o) => o.value);
  if (current.join("\n") !== unique.join("\n")) {
    select.replaceChildren(h("option", { value: "" }, allLabel), ...unique.map((v) => h("option", { value: v }, v)));
  }
  select.value = selected;
}

function overview(list, now) {
  const live = list.filter((r) => !r.item.revoked && r.expires && r.expires > now);
  const within = (days) => live.filter((r) => r.expires - now < days * day).length;
  byId("stat-total").textContent = String(list.length);
  byId("stat-7").textContent = String(within(7));
  byId("stat-30").textContent = String(within(30));
  byId("stat-failed").textContent = String(list.filter((r) => r.renewal.failed).length);
  byId("stat-7").parentElement.classList.toggle("critical", within(7) > 0);
  byId("stat-failed").parentElement.classList.toggle("critical", list.some((r) => r.renewal.failed));
  chart(live, now);
}

// chart draws expiries over the next 90 days as 13 weekly bars.
function chart(live, now) {
  const weeks = 13;
  const counts = new Array(weeks).fill(0);
  for (const r of live) {
    const i = Math.floor((r.expires - now) / (7 * day));
    if (i < weeks && r.expires - now <= 90 * day) counts[i]++;
  }
  const max = Math.max(1, ...counts);
  const barWidth = 20;
  const gap = 6;
  const height = 80;
  const width = weeks * (barWidth + gap);
  const bars = counts.map((n, i) => {
    const start = new Date(now.getTime() + i * 7 * day);
    const hgt = n === 0 ? 1 : Math.max(4, Math.round((n / max) * (height - 16)));
    return s("g", {},
      s("title", {}, "Week of " + formatDate(start) + ": " + n + (n === 1 ? " certificate" : " certificates")),
      s("rect", {
        class: "bar" + (i === 0 && n > 0 ? " critical" : "") + (n === 0 ? " empty" : ""),
        x: i * (barWidth + gap), y: height - hgt, width: barWidth, height: hgt, rx: 2,
      }),
      n > 0 ? s("text", { class: "bar-label", x: i * (barWidth + gap) + barWidth / 2, y: height - hgt - 3, "text-anchor": "middle" }, String(n)) : null);
  });
  const ticks = [[0, "now"], [30, "+30 d"], [60, "+60 d"], [90, "+90 d"]].map(([d, label]) =>
    s("text", { class: "axis", x: Math.min(width - 1, (d / 7) * (barWidth + gap)), y: height + 14, "text-anchor": d === 0 ? "start" : d === 90 ? "end" : "middle" }, label));
  const summary = counts.some((n) => n > 0)
    ? counts.map((n, i) => (n ? n + " in week " + (i + 1) : "")).filter(Boolean).join(", ")
    : "No certificate expires in the next 90 days";
  byId("chart").replaceChildren(s("svg", {
    viewBox: "0 0 " + width + " " + (height + 18), role: "img", "aria-labelledby": "chart-title chart-desc",
    preserveAspectRatio: "xMinYMid meet",
  }, s("desc", { id: "chart-desc" }, summary + "."), bars, ticks));
}

function matches(r, now) {
  if (view.q && !r.search.includes(view.q.trim().toLowerCase())) return false;
  if (view.zone && r.zone !== view.zone) return false;
  if (view.provider && r.item.dnsProviderName !== view.provider) return false;
  if (view.expiry === "expired") return !r.expires || r.expires <= now;
  if (view.expiry) {
    const days = Number(view.expiry);
    return r.expires && r.expires > now && r.expires - now < days * day;
  }
  return true;
}

const compare = {
  name: (a, b) => a.item.name.localeCompare(b.item.name),
  zone: (a, b) => a.zone.localeCompare(b.zone),
  provider: (a, b) => (a.item.dnsProviderName || "").localeCompare(b.item.dnsProviderName || ""),
  expiry: (a, b) => (a.expires ? a.expires.getTime() : 0) - (b.expires ? b.expires.getTime() : 0),
};

function render() {
  const now = new Date();
  const focused = document.activeElement && document.activeElement.dataset.focusKey;
  const shown = rows.filter((r) => matches(r, now))
    .sort((a, b) => view.dir * compare[view.sort](a, b) || compare.name(a, b));
  const sections = [];
  for (const g of groups) {
    const members = shown.filter((r) => g.test(r.item));
    const total = rows.filter((r) => g.test(r.item)).length;
    if (g.id !== "managed" && total === 0) continue;
    sections.push(groupSection(g, members, total));
  }
  byId("groups").replaceChildren(...sections);
  const summary = rows.length === shown.length
    ? rows.length + (rows.length === 1 ? " certificate." : " certificates.")
    : "Showing " + shown.length + " of " + rows.length + " certificates.";
  byId("list-summary").textContent = summary;
  const note = byId("renewal-note");
  note.textContent = renewalsReported ? "" :
    "Next renewal is estimated (≈) from each certificate's lifetime: this server does not report renewal plans (GET /api/renewals).";
  show(note, !renewalsReported && rows.length > 0);
  if (focused) {
    const el = document.querySelector('[data-focus-key="' + CSS.escape(focused) + '"]');
    if (el) el.focus();
  }
  const query = new URLSearchParams();
  for (const k of ["q", "zone", "provider", "expiry"]) if (view[k]) query.set(k, view[k]);
  if (view.sort !== "name") query.set("sort", view.sort);
  if (view.dir < 0) query.set("dir", "desc");
  const qs = query.toString();
  history.replaceState(null, "", qs ? "?" + qs : location.pathname);
}

function groupSection(g, members, total) {
  const section = byId("group-template").content.firstElementChild.cloneNode(true);
  section.id = "group-" + g.id;
  const titleId = "group-title-" + g.id;
  section.setAttribute("aria-labelledby", titleId);
  const title = section.querySelector(".group-title");
  title.id = titleId;
  title.textContent = g.title;
  setText(section.querySelector(".group-note"), g.note);
  const table = section.querySelector("table");
  table.setAttribute("aria-labelledby", titleId);
  for (const th of section.querySelectorAll("th[data-sort]")) {
    const key = th.dataset.sort;
    const button = th.querySelector("button");
    button.dataset.focusKey = g.id + "-sort-" + key;
    if (key === view.sort) {
      th.setAttribute("aria-sort", view.dir > 0 ? "ascending" : "descending");
      button.append(h("span", { class: "sort-mark", "aria-hidden": "true" }, view.dir > 0 ? " ▲" : " ▼"));
    }
    button.addEventListener("click", () => {
      if (view.sort === key) view.dir = -view.dir;
      else {
        view.sort = key;
        view.dir = 1;
      }
      render();
    });
  }
  const body = section.querySelector("tbody");
  if (members.length === 0) {
    const empty = total === 0
      ? h("td", { colspan: 7, class: "empty" }, "No certificates yet. ", h("a", { href: "/new" }, "Add a certificate"), ".")
      : h("td", { colspan: 7, class: "empty" }, "No certificate matches the filters.");
    body.append(h("tr", {}, empty));
  }
  for (const r of members) body.append(row(r));
  return section;
}

function row(r) {
  const c = r.item;
  const expiry = r.expires
    ? [h("time", { datetime: c.expiresOn }, formatDate(r.expires)), " ",
      badge(relativeDays(r.expires), r.expiry.state),
      r.expiry.state !== "ok" ? h("span", { class: "visually-hidden" }, " (" + r.expiry.text + ")") : null]
    : "—";
  const renewal = [
    h("span", { class: r.renewal.failed ? "renewal failed" : "renewal" }, r.renewal.text),
    r.renewal.message ? h("span", { class: "renewal-message muted" }, r.renewal.message) : null,
    r.renewal.next ? h("span", { class: "renewal-next muted" },
      (r.renewal.estimated ? "next ≈ " : "next check ") + formatDateTime(r.renewal.next)) : null,
  ];
  const link = certificateLink(c.name);
  link.dataset.focusKey = "link-" + c.name;
  return h("tr", { "data-name": c.name, class: "state-" + r.expiry.state },
    h("th", { scope: "row", "data-label": "Certificate" },
      link, c.revoked ? [" ", badge("Revoked", "revoked")] : null,
      h("ul", { class: "dns-names" }, c.dnsNames.map((n) => h("li", {}, n)))),
    h("td", { "data-label": "Zone" }, r.zone || "—"),
    h("td", { "data-label": "DNS provider" }, c.dnsProviderName || "—"),
    h("td", { "data-label": "Expires", class: "expiry" }, expiry),
    h("td", { "data-label": "Key" }, describeKey(c)),
    h("td", { "data-label": "CA" }, c.acmeEndpoint || "—"),
    h("td", { "data-label": "Renewal" }, renewal));
}
