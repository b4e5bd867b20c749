// The sign-in page: an API key, checked against GET /api/me before it is
// kept for this tab.

import { ApiError, get } from "../api.js";
import { currentCredential, safeNext, signIn, signOut } from "../auth.js";
import { byId, setText } from "../dom.js";

const next = safeNext(new URLSearchParams(location.search).get("next"));
const form = byId("signin-form");
const input = byId("api-key");
const error = byId("api-key-error");

if (currentCredential()) {
  try {
    await get("/api/me", { redirect: false });
    location.replace(next);
  } catch {
    signOut();
  }
}
input.focus();

// The OIDC sign-in links come back to the same page.
for (const a of document.querySelectorAll(".other-signin a[href^='/signin/oidc']")) {
  const u = new URL(a.href);
  u.searchParams.set("next", next);
  a.href = u.pathname + u.search;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = input.value.trim();
  input.removeAttribute("aria-invalid");
  setText(error, "");
  if (!key) {
    fail("Enter an API key.");
    return;
  }
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  try {
    const credential = { kind: "apiKey", secret: key };
    await get("/api/me", { credential, redirect: false });
    signIn(credential);
    location.assign(next);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) fail("That API key was not accepted.");
    else fail(err.message);
  } finally {
    button.disabled = false;
  }
});

function fail(message) {
  setText(error, message);
  input.setAttribute("aria-invalid", "true");
  input.focus();
}
