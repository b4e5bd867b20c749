// The 404 page needs no sign-in; it only offers signing out when signed in.

import { currentCredential, signOut } from "../auth.js";
import { byId, show } from "../dom.js";

const button = byId("sign-out");
show(button, Boolean(currentCredential()));
button.addEventListener("click", () => {
  signOut();
  location.assign("/signin");
});
