// How values are shown: dates, remaining days, expiry states, keys, zones.

export const day = 24 * 60 * 60 * 1000;

/** parseTime returns the Date of an API time string, or null. */
export function parseTime(value) {
  if (!value) return null;
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : new Date(t);
}

const dateFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** formatDate is a date in the reader's locale, "—" for none. */
export function formatDate(d) {
  return d ? dateFormat.format(d) : "—";
}

/** formatDateTime is a date and time in the reader's locale. */
export function formatDateTime(d) {
  return d ? dateTimeFormat.format(d) : "—";
}

/** daysLeft is the number of whole days from now until d (negative once past). */
export function daysLeft(d, now = new Date()) {
  return Math.floor((d - now) / day);
}

/** relativeDays says when d is: "in 12 days", "in 1 day", "today", "expired 3 days ago". */
export function relativeDays(d, now = new Date()) {
  if (d <= now) {
    const ago = Math.floor((now - d) / day);
    if (ago === 0) return "expired today";
    return "expired " + ago + (ago === 1 ? " day" : " days") + " ago";
  }
  const n = daysLeft(d, now);
  if (n === 0) return "today";
  return "in " + n + (n === 1 ? " day" : " days");
}

/**
 * renewalPoint estimates when a certificate is due for renewal when the
 * server does not say: 30 days before expiry as Acmebot does, but a third
 * of the lifetime for certificates shorter than 90 days and half of it for
 * 10 days or less.
 */
export function renewalPoint(item) {
  const notAfter = parseTime(item.expiresOn);
  if (!notAfter) return null;
  const notBefore = parseTime(item.notBefore || item.createdOn);
  const lifetime = notBefore && notBefore < notAfter ? notAfter - notBefore : 90 * day;
  const before = lifetime <= 10 * day ? lifetime / 2 : Math.min(30 * day, lifetime / 3);
  return new Date(notAfter.getTime() - before);
}

/**
 * expiryState is how urgent a certificate's expiry is: "revoked",
 * "expired", "critical" (under 7 days), "due" (past the renewal point) or
 * "ok"; text is what people read for it besides the colour.
 */
export function expiryState(item, now = new Date()) {
  const expires = parseTime(item.expiresOn);
  if (item.revoked) return { state: "revoked", text: "Revoked" };
  if (!expires || expires <= now) return { state: "expired", text: "Expired" };
  if (expires - now < 7 * day) return { state: "critical", text: "Expires within 7 days" };
  const due = renewalPoint(item);
  if (due && now >= due) return { state: "due", text: "Past its renewal point" };
  return { state: "ok", text: "Valid" };
}

/** describeKey is "RSA 2048" or "EC P-256". */
export function describeKey(item) {
  if (item.keyType === "EC") return "EC " + (item.keyCurveName || "");
  if (item.keyType === "RSA") return "RSA " + (item.keySize || "");
  return item.keyType || "—";
}

/**
 * zoneOf returns the longest of zones that equals name or is a suffix of
 * it at a label boundary ("*." ignored), or "".
 */
export function zoneOf(name, zones) {
  const n = (name || "").toLowerCase().replace(/^\*\./, "").replace(/\.$/, "");
  let best = "";
  for (const z of zones) {
    const zone = z.toLowerCase().replace(/\.$/, "");
    if ((n === zone || n.endsWith("." + zone)) && zone.length > best.length) best = zone;
  }
  return best;
}

/** duration is a short human form of ms: "40 ms", "2.4 s", "12 s", "2 min 5 s". */
export function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "—";
  if (ms < 1000) return Math.round(ms) + " ms";
  if (ms < 10000) return (ms / 1000).toFixed(1) + " s";
  const total = Math.round(ms / 1000);
  if (total < 60) return total + " s";
  const min = Math.floor(total / 60);
  if (min < 60) return min + " min " + (total % 60) + " s";
  return Math.floor(min / 60) + " h " + (min % 60) + " min";
}

/**
 * toASCII returns name as the API will see it: lowercase, without a
 * trailing dot, Unicode labels converted to punycode (IDNA, by the
 * browser's URL parser); null when it cannot be converted.
 */
export function toASCII(name) {
  let rest = (name || "").trim().replace(/\.$/, "");
  let wildcard = "";
  if (rest.startsWith("*.")) {
    wildcard = "*.";
    rest = rest.slice(2);
  }
  if (/^[\x21-\x7e]*$/.test(rest)) return wildcard + rest.toLowerCase();
  try {
    return wildcard + new URL("http://" + rest + "/").hostname;
  } catch {
    return null;
  }
}

/** kindLabel names an operation's kind. */
export function kindLabel(kind) {
  return { issue: "Issue", renew: "Renewal" }[kind] || kind;
}

/** statusLabel names an operation's status. */
export function statusLabel(status) {
  return { pending: "Waiting", running: "Running", succeeded: "Succeeded", failed: "Failed" }[status] || status;
}
