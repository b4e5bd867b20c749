// What every signed-in page shares: the sign-in check, the caller's name
// and permissions, and signing out.

import { get } from "./api.js";
import { currentCredential, goToSignIn, signOut } from "./auth.js";
import { byId } from "./dom.js";

/**
 * initShell resolves to the caller (GET /api/me) once the tab is signed in;
 * without a credential it leaves for the sign-in page and never resolves.
 */
export async function initShell() {
  const signOutButton = byId("sign-out");
  if (signOutButton) {
    signOutButton.addEventListener("click", () => {
      signOut();
      location.assign("/signin");
    });
  }
  if (!currentCredential()) {
    goToSignIn();
    return new Promise(() => {});
  }
  const me = (await get("/api/me")).data;
  const who = byId("who");
  if (who) who.textContent = "Signed in as " + me.name;
  return me;
}

/**
 * every runs fn now and then again after the delay it returns (in ms),
 * while the page is visible; a hidden page catches up when shown again.
 */
export function every(fn) {
  let timer = null;
  let running = false;
  const run = async () => {
    clearTimeout(timer);
    if (running) return;
    running = true;
    let delay = 15000;
    try {
      delay = await fn();
    } catch {
      // fn shows its own errors; try again later.
    } finally {
      running = false;
    }
    if (!document.hidden && delay) timer = setTimeout(run, delay);
  };
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) run();
  });
  return run();
}
