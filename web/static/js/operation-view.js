// An operation (an issue or a renewal) and its steps, shown once or
// followed live until it ends.

import { ApiError, get } from "./api.js";
import { badge, certificateLink, h } from "./dom.js";
import { duration, formatDateTime, kindLabel, parseTime, statusLabel } from "./format.js";

const badgeKinds = { pending: "running", running: "running", succeeded: "ok", failed: "critical" };

/**
 * renderOperation returns the element that shows op (the operation view of
 * GET /api/operations/{id}); detail is the failure detail when it failed.
 */
export function renderOperation(op, detail) {
  const steps = op.steps || [];
  const done = op.status === "succeeded" || op.status === "failed";
  const items = steps.map((st, i) => {
    const last = i === steps.length - 1;
    const current = !done && last && !st.finishedAt;
    const failed = Boolean(st.error) || (op.status === "failed" && last && op.failedStep === st.name);
    const state = failed ? "failed" : current ? "current" : "done";
    const icon = { failed: "✗", current: "…", done: "✓" }[state];
    const note = { failed: "failed", current: "in progress", done: "done" }[state];
    return h("li", { class: "step " + state, "data-step": st.name },
      h("span", { class: "step-icon", "aria-hidden": "true" }, icon),
      h("span", { class: "step-name" }, st.name),
      h("span", { class: "visually-hidden" }, " (" + note + ")"),
      st.durationMs !== undefined && st.durationMs !== null
        ? h("span", { class: "step-time muted" }, duration(st.durationMs)) : null,
      // The failed step's error is shown once, in the failure below.
      st.error && !(op.status === "failed" && st.name === op.failedStep && st.error === op.error)
        ? h("span", { class: "step-error" }, st.error) : null);
  });
  if (items.length === 0 && !done) {
    items.push(h("li", { class: "step current" },
      h("span", { class: "step-icon", "aria-hidden": "true" }, "…"),
      h("span", { class: "step-name" }, "waiting for a worker")));
  }
  const created = parseTime(op.createdAt);
  const updated = parseTime(op.updatedAt);
  let failure = null;
  if (op.status === "failed") {
    const text = detail || (op.failedStep ? op.failedStep + ": " : "") + (op.error || "the operation failed");
    failure = h("p", { class: "alert op-failure" }, h("strong", {}, "Failed: "), text);
  }
  return h("div", { class: "operation", "data-operation": op.id, "data-status": op.status },
    h("p", { class: "op-head" },
      h("strong", {}, kindLabel(op.kind)), " of ", certificateLink(op.certificateName), " ",
      badge(statusLabel(op.status), badgeKinds[op.status] || ""),
      h("span", { class: "muted op-time" },
        " started ", h("time", { datetime: op.createdAt }, formatDateTime(created)),
        done && created && updated ? ", took " + duration(updated - created) : "",
        op.attempt > 1 ? ", attempt " + op.attempt : ""),
      " ", h("a", { href: "/operations/" + op.id, class: "op-link" }, "Details")),
    h("ol", { class: "steps", "aria-label": "Steps" }, items),
    failure);
}

/**
 * fetchOperation resolves to {op, detail} for operation id: 202 while it
 * runs, 200 once it succeeded, 500 with a problem holding the operation once
 * it failed.
 */
export async function fetchOperation(id) {
  try {
    const res = await get("/api/operations/" + id, { accept: [202] });
    return { op: res.data, detail: null };
  } catch (err) {
    if (err instanceof ApiError && err.status === 500 && err.problem && err.problem.operation) {
      return { op: err.problem.operation, detail: err.problem.detail };
    }
    throw err;
  }
}

/**
 * watchOperation shows operation id in container and follows it until it
 * ends (or container leaves the page), then resolves to {op, detail}.
 * onChange is called with each new state.
 */
export async function watchOperation(id, container, { interval = 800, onChange } = {}) {
  const status = h("p", { class: "op-status", role: "status" });
  let view = h("p", { class: "muted" }, "Loading the operation…");
  container.replaceChildren(view, status);
  let last = "";
  for (;;) {
    let result;
    try {
      result = await fetchOperation(id);
    } catch (err) {
      const msg = h("p", { class: "alert", role: "alert" }, err.message);
      view.replaceWith(msg);
      view = msg;
      if (!(err instanceof ApiError) || err.status === 0 || err.status >= 500) {
        await sleep(interval * 3);
        if (!container.isConnected) return null;
        continue;
      }
      return null;
    }
    const { op, detail } = result;
    const key = op.status + "|" + op.updatedAt + "|" + (op.steps || []).length;
    if (key !== last) {
      last = key;
      const next = renderOperation(op, detail);
      view.replaceWith(next);
      view = next;
      if (onChange) onChange(op);
    }
    if (op.status === "succeeded" || op.status === "failed") {
      const text = kindLabel(op.kind) + " of " + op.certificateName + " " +
        (op.status === "succeeded" ? "succeeded." : "failed: " + (detail || op.error));
      status.textContent = text;
      return result;
    }
    status.textContent = op.currentStep ? "Now: " + op.currentStep + "…" : statusLabel(op.status) + "…";
    await sleep(interval);
    if (!container.isConnected) return null;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
