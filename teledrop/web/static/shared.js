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

// Numbers as the reader writes them (their browser's language): "4.0 MiB" or "4,0 MiB".
const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];
const decimals = [0, 1].map((digits) => new Intl.NumberFormat(undefined,
  { minimumFractionDigits: digits, maximumFractionDigits: digits }));
export function formatSize(n) {
  let i = 0;
  while (n >= 1024 && i < SIZE_UNITS.length - 1) { n /= 1024; i += 1; }
  return decimals[i > 0 && n < 10 ? 1 : 0].format(n) + " " + SIZE_UNITS[i];
}

export function describeSize(n) {
  if (n < 1024) return n === 1 ? "1 byte" : decimals[0].format(n) + " bytes";
  return formatSize(n) + " (" + decimals[0].format(n) + " bytes)";
}

// "in 6 days", "in 1 hour", "3 minutes ago", in the reader's language: the largest unit
// that fits, rounded, as the server writes it for a browser without this script.
const RELATIVE_UNITS = [["year", 365 * 86400], ["month", 30 * 86400], ["day", 86400],
                        ["hour", 3600], ["minute", 60]];
export function relativeTime(date, now = Date.now()) {
  const seconds = (date.getTime() - now) / 1000;
  const words = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of RELATIVE_UNITS) {
    if (Math.abs(seconds) >= size) return words.format(Math.round(seconds / size), unit);
  }
  return words.format(Math.round(seconds / 60), "minute");
}

export function localTime(date) {
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

// The server writes times in UTC and sizes in English: say them in the reader's own way,
// each absolute time with how far off it is.
export function localize(root) {
  for (const node of root.querySelectorAll("time.expiry[datetime]")) {
    const date = new Date(node.dateTime);
    if (isNaN(date)) continue;
    node.textContent = localTime(date);
    node.title = node.dateTime;
    const relative = node.parentElement.querySelector(".relative");
    if (relative) relative.textContent = "(" + relativeTime(date) + ")";
  }
  for (const node of root.querySelectorAll("data.size[value]")) {
    node.textContent = describeSize(Number(node.value));
  }
}

// --- copy and share -----------------------------------------------------------------------

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (_) { /* denied: try the old way */ }
  }
  const back = document.activeElement;
  const area = el("textarea", { value: text, readOnly: true });
  area.setAttribute("aria-hidden", "true");
  area.style.cssText = "position:fixed;top:0;left:0;opacity:0;pointer-events:none";
  document.body.append(area);
  area.select();
  let copied = false;
  try { copied = document.execCommand("copy"); } catch (_) { copied = false; }
  area.remove();
  if (back && back.focus) back.focus();
  return copied;
}

function selectText(node) {
  const range = document.createRange();
  range.selectNodeContents(node);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

// A Copy button for `url`, shown in `link`: copies it, or selects it when no clipboard works.
export function wireCopy(copy, url, link, say) {
  copy.addEventListener("click", async () => {
    if (await copyText(url)) {
      copy.textContent = "Copied";
      say("Link copied");
      setTimeout(() => { copy.textContent = "Copy link"; }, 2000);
    } else {
      selectText(link);
      say("Press Ctrl+C to copy the selected link");
    }
  });
}

// The system's share sheet, where the browser has one; elsewhere the button stays hidden.
export function wireShare(button, url, title) {
  if (typeof navigator.share !== "function") return;
  button.hidden = false;
  button.addEventListener("click", () => {
    navigator.share({ url, title }).catch(() => { /* dismissed: nothing to do */ });
  });
}

// A share section as the server draws it (templates/macros.html), for a drop made here.
export function shareSection(url, title, say) {
  const href = safeHref(url);
  const link = href
    ? el("a", { className: "link", href, textContent: url })
    : el("span", { className: "link", textContent: url });
  const copy = el("button", { type: "button", className: "copy", textContent: "Copy link" });
  const share = el("button",
    { type: "button", className: "share-sheet secondary", textContent: "Share…", hidden: true });
  copy.setAttribute("aria-label", "Copy link to " + title);
  share.setAttribute("aria-label", "Share " + title);
  const qr = el("img", { className: "qr", alt: "QR code of the link to " + title,
                         src: new URL("api/qr.svg?link=" + encodeURIComponent(url), ROOT).href });
  wireCopy(copy, url, link, say);
  wireShare(share, url, title);
  const section = el("section", { className: "share" },
    el("p", { className: "link-row" }, link),
    el("p", { className: "share-actions" }, copy, share), qr);
  section.setAttribute("aria-label", "Share the link to " + title);
  return { section, copy };
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
