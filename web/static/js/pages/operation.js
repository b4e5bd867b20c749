// One operation, followed live until it ends.

import { initShell } from "../shell.js";
import { byId, setText } from "../dom.js";
import { kindLabel } from "../format.js";
import { watchOperation } from "../operation-view.js";

await initShell();
const id = location.pathname.split("/")[2] || "";
if (!/^[0-9a-f]{32}$/.test(id)) {
  setText(byId("load-error"), "There is no operation " + id + ".");
} else {
  await watchOperation(id, byId("live-operation"), {
    onChange(op) {
      const title = kindLabel(op.kind) + " of " + op.certificateName;
      byId("op-title").textContent = title;
      document.title = title + " · certkeeper";
    },
  });
}
