// Calls to certkeeper's JSON API with this tab's credential.

import { authHeaders, currentCredential, goToSignIn, signOut } from "./auth.js";

/** ApiError is an answer other than the ones a call accepts. */
export class ApiError extends Error {
  constructor(status, problem, message) {
    super(message || (problem && (problem.detail || problem.title)) || statusMessage(status));
    this.name = "ApiError";
    this.status = status;
    /** problem is the RFC 9457 problem document, when there is one. */
    this.problem = problem || null;
  }

  /** fieldErrors are a validation problem's messages by field, or null. */
  get fieldErrors() {
    return (this.problem && this.problem.errors) || null;
  }
}

function statusMessage(status) {
  switch (status) {
    case 0:
      return "certkeeper could not be reached.";
    case 403:
      return "Your sign-in is not allowed to do this.";
    case 404:
      return "Not found.";
    default:
      return "certkeeper answered " + status + ".";
  }
}

/**
 * request sends one API request and resolves to {status, headers, data}
 * (data: the parsed JSON body, or null), or to {status, headers, response}
 * with opts.raw. Statuses 2xx and those in opts.accept resolve; any other
 * rejects with an ApiError. A 401 forgets the credential and leaves for the
 * sign-in page (the promise then never settles), unless opts.redirect is
 * false. opts.credential overrides this tab's credential.
 */
export async function request(method, path, opts = {}) {
  const cred = opts.credential || currentCredential();
  const headers = { Accept: "application/json, application/problem+json", ...authHeaders(cred) };
  let body;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body, cache: "no-store", credentials: "omit", redirect: "error" });
  } catch (err) {
    throw new ApiError(0, null, "certkeeper could not be reached (" + err.message + ").");
  }
  if (res.status === 401 && opts.redirect !== false) {
    signOut();
    goToSignIn();
    return new Promise(() => {});
  }
  const ok = (res.status >= 200 && res.status < 300) || (opts.accept || []).includes(res.status);
  if (ok && opts.raw) return { status: res.status, headers: res.headers, response: res };
  let data = null;
  if ((res.headers.get("Content-Type") || "").includes("json")) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (!ok) throw new ApiError(res.status, data);
  return { status: res.status, headers: res.headers, data };
}

/** get is request("GET", …). */
export function get(path, opts) {
  return request("GET", path, opts);
}

/** post is request("POST", …) with body sent as JSON. */
export function post(path, body, opts) {
  return request("POST", path, { ...opts, body });
}

/** optional resolves to the data of GET path, or null when it fails. */
export async function optional(path) {
  try {
    const res = await get(path, { accept: [404] });
    return res.status === 200 ? res.data : null;
  } catch {
    return null;
  }
}

/** operationIdFrom returns the operation id at the end of a 202's Location. */
export function operationIdFrom(location) {
  const m = /\/api\/(?:state|operations)\/([0-9a-f]{32})$/.exec(location || "");
  return m ? m[1] : null;
}
