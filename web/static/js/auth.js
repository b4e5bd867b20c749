// Who the person is signed in as. The credential lives in this tab's
// sessionStorage and nowhere else (no cookie, no localStorage), so it is
// never sent by the browser on its own and is forgotten with the tab.
//
// A credential is {kind, secret}: kind "apiKey" is sent as X-Api-Key,
// kind "bearer" as "Authorization: Bearer". signIn is the hook a token
// sign-in flow (OIDC) calls when it has a token.

const storageKey = "certkeeper.credential";
const kinds = ["apiKey", "bearer"];

/** currentCredential returns the credential of this tab, or null. */
export function currentCredential() {
  let raw = null;
  try {
    raw = sessionStorage.getItem(storageKey);
  } catch {
    return null;
  }
  if (!raw) return null;
  try {
    const c = JSON.parse(raw);
    if (c && kinds.includes(c.kind) && typeof c.secret === "string" && c.secret !== "") {
      return { kind: c.kind, secret: c.secret };
    }
  } catch {
    // A damaged entry is dropped below.
  }
  sessionStorage.removeItem(storageKey);
  return null;
}

/** signIn keeps credential c for this tab. */
export function signIn(c) {
  if (!c || !kinds.includes(c.kind) || typeof c.secret !== "string" || c.secret === "") {
    throw new Error("signIn needs {kind: \"apiKey\" or \"bearer\", secret}");
  }
  sessionStorage.setItem(storageKey, JSON.stringify({ kind: c.kind, secret: c.secret }));
}

/** signOut forgets this tab's credential. */
export function signOut() {
  sessionStorage.removeItem(storageKey);
}

/** authHeaders are the request headers that carry credential c. */
export function authHeaders(c) {
  if (!c) return {};
  if (c.kind === "bearer") return { Authorization: "Bearer " + c.secret };
  return { "X-Api-Key": c.secret };
}

/**
 * safeNext returns raw when it is a path on this origin other than the
 * sign-in page, else "/": the page to go to after signing in.
 */
export function safeNext(raw) {
  if (!raw) return "/";
  try {
    const u = new URL(raw, location.origin);
    if (u.origin !== location.origin || u.pathname === "/signin") return "/";
    return u.pathname + u.search + u.hash;
  } catch {
    return "/";
  }
}

/** goToSignIn leaves for the sign-in page, which comes back here. */
export function goToSignIn() {
  location.replace("/signin?next=" + encodeURIComponent(location.pathname + location.search));
}
