// Building the DOM from data without ever parsing HTML: every string is
// text. (The Content-Security-Policy requires Trusted Types with no policy,
// so innerHTML and friends would throw anyway.)

const svgNS = "http://www.w3.org/2000/svg";

/**
 * h creates an HTML element. attrs: "class", "text" (textContent),
 * "on<event>" functions, true for boolean attributes; null, undefined and
 * false are left out. children: nodes, strings, arrays, or nothing.
 */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** s creates an SVG element, as h does. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(svgNS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.setAttribute("class", v);
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** byId is document.getElementById. */
export function byId(id) {
  return document.getElementById(id);
}

/** show shows or hides el. */
export function show(el, visible) {
  if (el) el.hidden = !visible;
}

/** setText sets el's text and shows el when the text is not empty. */
export function setText(el, text) {
  if (!el) return;
  el.textContent = text || "";
  el.hidden = !text;
}

/** announce tells screen reader users text through the live region. */
export function announce(text) {
  const region = byId("announcer");
  if (!region) return;
  region.textContent = "";
  setTimeout(() => {
    region.textContent = text;
  }, 30);
}

/** badge is a small labelled status marker. */
export function badge(text, kind) {
  return h("span", { class: "badge " + (kind || "") }, text);
}

/** certificateLink links to a certificate's page. */
export function certificateLink(name) {
  return h("a", { href: "/certificates/" + encodeURIComponent(name) }, name);
}
