// Recent operations, newest first; the list is polled quickly while one
// runs, so running steps show live, and an unchanged entry is left alone
// (keeping focus and reading position).

import { get } from "../api.js";
import { every, initShell } from "../shell.js";
import { byId, h, setText } from "../dom.js";
import { renderOperation } from "../operation-view.js";

await initShell();
const list = byId("operations");
const shown = new Map(); // id → {key, el}

every(async () => {
  let ops;
  try {
    ops = (await get("/api/operations?limit=50")).data;
    setText(byId("load-error"), "");
  } catch (err) {
    setText(byId("load-error"), "The operations could not be loaded: " + err.message);
    return 5000;
  }
  if (ops.length === 0) {
    list.replaceChildren(h("p", { class: "muted" }, "No operations yet. ", h("a", { href: "/new" }, "Add a certificate"), "."));
    shown.clear();
    return 10000;
  }
  if (shown.size === 0) list.replaceChildren();
  let previous = null;
  for (const op of ops) {
    const key = op.status + "|" + op.updatedAt + "|" + op.steps.length;
    let entry = shown.get(op.id);
    if (!entry) {
      entry = { key, el: h("article", { class: "card op-card" }, renderOperation(op)) };
      shown.set(op.id, entry);
      if (previous) previous.after(entry.el);
      else list.prepend(entry.el);
    } else if (entry.key !== key) {
      entry.key = key;
      entry.el.replaceChildren(renderOperation(op));
    }
    previous = entry.el;
  }
  const running = ops.some((op) => op.status === "pending" || op.status === "running");
  return running ? 1000 : 10000;
});
