// OIDC sign-in (issue 9): the authorization code flow with PKCE (S256) for
// the dashboard's public client, run entirely in this tab.
//
// /signin/oidc?issuer=N&next=P starts it: the issuer's endpoints come from
// GET /dashboard/oidc-config, a code verifier, state and nonce are made and
// kept in sessionStorage, and the browser goes to the authorization
// endpoint. The issuer sends it back to /signin/oidc?code=…&state=…: the
// state must match, the code is exchanged at the token endpoint with the
// verifier, the ID token's nonce, issuer and audience must match, and the
// token certkeeper names (the ID token when the client id is an accepted
// audience, else the access token) is checked with GET /api/me and kept as
// the bearer credential of this tab.

import { ApiError, get } from "../api.js";
import { safeNext, signIn } from "../auth.js";
import { byId, setText } from "../dom.js";

const pendingKey = "certkeeper.oidc";
const status = byId("oidc-status");
const errorBox = byId("oidc-error");
const params = new URLSearchParams(location.search);
const redirectURI = location.origin + "/signin/oidc";

try {
  if (params.has("code") || params.has("error")) await finish();
  else await start();
} catch (err) {
  fail(err instanceof ApiError && err.status === 401 ? "certkeeper did not accept the token the issuer gave." : err.message);
}

async function start() {
  const index = Number(params.get("issuer") || "0");
  const res = await fetch("/dashboard/oidc-config", { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error("certkeeper answered " + res.status + " for the OIDC settings.");
  const cfg = await res.json();
  const issuer = (cfg.issuers || [])[index];
  if (!issuer) throw new Error("There is no OIDC issuer " + index + ".");
  const verifier = randomString(32);
  const pending = {
    issuer: issuer.issuer,
    clientId: issuer.clientId,
    tokenEndpoint: issuer.tokenEndpoint,
    token: issuer.token,
    state: randomString(16),
    nonce: randomString(16),
    verifier,
    next: safeNext(params.get("next")),
  };
  sessionStorage.setItem(pendingKey, JSON.stringify(pending));
  const q = new URLSearchParams({
    response_type: "code",
    client_id: issuer.clientId,
    redirect_uri: redirectURI,
    scope: issuer.scope,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await challenge(verifier),
    code_challenge_method: "S256",
  });
  const u = new URL(issuer.authorizationEndpoint);
  for (const [k, v] of q) u.searchParams.set(k, v);
  setText(status, "Going to " + u.origin + "…");
  location.assign(u.href);
}

async function finish() {
  const raw = sessionStorage.getItem(pendingKey);
  sessionStorage.removeItem(pendingKey);
  // The code and state leave the address bar and the history.
  history.replaceState(null, "", "/signin/oidc");
  const pending = raw ? JSON.parse(raw) : null;
  if (!pending || !params.get("state") || params.get("state") !== pending.state) {
    throw new Error("This sign-in was not started in this tab (the state does not match). Start again.");
  }
  if (params.has("error")) {
    throw new Error("The issuer refused: " + (params.get("error_description") || params.get("error")));
  }
  setText(status, "Exchanging the code…");
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code: params.get("code"),
    redirect_uri: redirectURI,
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  let res;
  try {
    res = await fetch(pending.tokenEndpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body,
      credentials: "omit",
    });
  } catch {
    throw new Error("The token endpoint could not be reached (it must allow this origin by CORS).");
  }
  const tokens = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error("The token endpoint refused: " + (tokens.error_description || tokens.error || res.status));
  const claims = payload(tokens.id_token);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (claims.nonce !== pending.nonce) throw new Error("The ID token's nonce does not match this sign-in.");
  if (claims.iss !== pending.issuer || !aud.includes(pending.clientId)) {
    throw new Error("The ID token is not from " + pending.issuer + " for this client.");
  }
  const secret = pending.token === "id" ? tokens.id_token : tokens.access_token;
  if (typeof secret !== "string" || secret === "") throw new Error("The token endpoint sent no " + pending.token + " token.");
  const credential = { kind: "bearer", secret };
  setText(status, "Checking the token with certkeeper…");
  await get("/api/me", { credential, redirect: false });
  signIn(credential);
  location.replace(pending.next);
}

/** payload decodes a JWT's claims (their signature is certkeeper's to check). */
function payload(jwt) {
  const part = typeof jwt === "string" ? jwt.split(".")[1] : "";
  if (!part) throw new Error("The token endpoint sent no ID token.");
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

function base64url(bytes) {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function challenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function fail(message) {
  setText(status, "Not signed in.");
  setText(errorBox, message);
}
