// What the upload page's two scripts share: building elements from data (textContent only,
// never HTML), the server's one-line reasons, sizes, live announcements and the token that
// this browser keeps.

export const TOKEN_KEY = "teledrop.upload-token";

// Where the app lives: the page's own directory, so that a mount path is kept.
export const ROOT = new URL("./", document.baseURI);

export function el(tag, props, ...children) {
  const node = Object.assign(document.createElement(tag), props || {});
  node.append(...children); // strings become text nodes
  return node;
}

// A polite live region that says each sentence, even the same one twice in a row.
export function announcer(region) {
  let timer = 0;
  return (text) => {
    region.textContent = "";
    clearTimeout(timer);
    timer = setTimeout(() => { region.textContent = text; }, 30);
  };
}

const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
export function formatSize(n) {
  let i = 0;
  while (n >= 1024 && i < SIZE_UNITS.length - 1) { n /= 1024; i += 1; }
  return (i === 0 ? String(n) : n.toFixed(n < 10 ? 1 : 0)) + " " + SIZE_UNITS[i];
}

export function describeSize(n) {
  if (n < 1024) return n === 1 ? "1 byte" : n + " bytes";
  return formatSize(n) + " (" + n.toLocaleString("en") + " bytes)";
}

export function safeHref(url) {
  try {
    const parsed = new URL(url, ROOT);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (_) {
    return null;
  }
}

// Keyboard focus must not fall to <body> when the focused control goes away.
export function moveFocusFrom(node, target) {
  if (node.contains(document.activeElement)) target.focus();
}

export function serverReason(text, statusCode) {
  try {
    const reason = JSON.parse(text).error.message;
    if (typeof reason === "string" && reason) return reason;
  } catch (_) { /* not our JSON: a proxy's page, or nothing */ }
  return statusCode ? "the server answered " + statusCode : "the connection failed";
}

// --- the token ------------------------------------------------------------------------

// A server that needs a token asks for it in the upload form (#token); an open one offers
// an optional field under "My drops" (#owner-token). Either way there is one token.
export function tokenInput() {
  return document.getElementById("token") || document.getElementById("owner-token");
}

export function currentToken() {
  const input = tokenInput();
  return input ? input.value.trim() : "";
}

function storage() {
  try { return window.localStorage; } catch (_) { return null; } // disabled storage throws
}

// Runs once, whichever script imports this first.
(() => {
  const input = tokenInput();
  if (!input) return;
  const store = storage();
  if (store) input.value = store.getItem(TOKEN_KEY) || "";
  input.addEventListener("input", () => {
    input.removeAttribute("aria-invalid");
    if (!store) return;
    const token = input.value.trim();
    if (token) store.setItem(TOKEN_KEY, token); else store.removeItem(TOKEN_KEY);
  });
})();

// Uploads tell the list about new drops through this event on the document.
export const UPLOADED = "teledrop:uploaded";
