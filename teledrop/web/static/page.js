// teledrop's upload page. Without this script the page is a plain multipart form; with it,
// every dropped or picked file goes up in its own XMLHttpRequest (the only browser API with
// upload progress events), with a progress bar, a Cancel button and, once stored, the link,
// a Copy button and a Delete button. Data from files and the server is written with
// textContent only, never parsed as HTML.

import {
  UPLOADED, announcer, currentToken, describeSize, el, formatSize, moveFocusFrom, safeHref,
  serverReason, tokenInput,
} from "./shared.js";

function main() {
  const form = document.getElementById("upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  document.documentElement.classList.replace("no-js", "js");

  const fileInput = document.getElementById("file");
  const zone = document.getElementById("drop-zone");
  const list = document.getElementById("uploads");
  const slugInput = document.getElementById("slug");
  const privateInput = document.getElementById("private");
  const endpoint = form.action; // absolute: uploads go where the form would post
  const say = announcer(document.getElementById("status"));
  let inFlight = 0;

  fileInput.multiple = true;
  fileInput.required = false;
  const here = document.getElementById("here");
  if (here) here.textContent = endpoint;

  function formatTime(seconds) {
    const s = Math.max(0, Math.ceil(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }

  // Bytes per second over the last few seconds, so the figure follows the line's speed.
  function speedMeter(windowMs) {
    const samples = [];
    return (loaded) => {
      const now = performance.now();
      samples.push([now, loaded]);
      while (samples.length > 2 && now - samples[1][0] > windowMs) samples.shift();
      const [t0, b0] = samples[0];
      return now - t0 > 0 ? ((loaded - b0) * 1000) / (now - t0) : 0;
    };
  }

  // --- copy -----------------------------------------------------------------------------

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

  // --- one file -------------------------------------------------------------------------

  function details(pairs) {
    const dl = el("dl");
    for (const [term, value] of pairs) {
      dl.append(el("dt", { textContent: term }), el("dd", {}, value));
    }
    return dl;
  }

  function showDrop(item, parts, drop) {
    const href = safeHref(drop.url);
    const link = href
      ? el("a", { className: "link", href, textContent: drop.url })
      : el("span", { className: "link", textContent: drop.url });
    const copy = el("button", { type: "button", className: "copy", textContent: "Copy link" });
    const del = el("button",
      { type: "button", className: "delete secondary", textContent: "Delete" });
    copy.setAttribute("aria-label", "Copy link to " + parts.filename);
    del.setAttribute("aria-label", "Delete " + parts.filename);
    const expires = new Date(drop.expires_at);
    const info = details([
      ["Size", describeSize(drop.size)],
      ["Hash", el("code", { textContent: drop.hash })],
      ["Expires", isNaN(expires) ? String(drop.expires_at) : expires.toLocaleString()],
      ["Downloads", drop.max_downloads == null ? "unlimited" : "at most " + drop.max_downloads],
      ["Delete token", el("code", { className: "token", textContent: drop.delete_token || "" })],
    ]);
    if (drop.title) info.prepend(el("dt", { textContent: "Title" }), el("dd", {}, drop.title));
    const access = [drop.private && "private", drop.has_password && "password"].filter(Boolean);
    if (access.length) {
      info.append(el("dt", { textContent: "Access" }), el("dd", {}, access.join(", ")));
    }
    const linkRow = el("p", { className: "link-row" }, link, copy);
    const actions = el("p", { className: "actions" }, del);
    item.append(linkRow, info, actions, parts.message); // messages about this drop go last

    copy.addEventListener("click", async () => {
      if (await copyText(drop.url)) {
        copy.textContent = "Copied";
        say("Link copied");
        setTimeout(() => { copy.textContent = "Copy link"; }, 2000);
      } else {
        selectText(link);
        say("Press Ctrl+C to copy the selected link");
      }
    });

    del.addEventListener("click", async () => {
      // aria-disabled, not disabled: a disabled button drops the keyboard focus.
      if (del.getAttribute("aria-disabled") === "true") return;
      del.setAttribute("aria-disabled", "true");
      let reason = null;
      try {
        const response = await fetch(new URL(encodeURIComponent(drop.slug), endpoint), {
          method: "DELETE",
          headers: { "X-Delete-Token": drop.delete_token || "", Accept: "application/json" },
        });
        if (response.status !== 204) {
          reason = serverReason(await response.text(), response.status);
        }
      } catch (_) {
        reason = "the connection failed";
      }
      if (reason) {
        del.removeAttribute("aria-disabled");
        parts.message.textContent = "Not deleted: " + reason;
        say(parts.filename + " was not deleted: " + reason);
        return;
      }
      moveFocusFrom(item, item);
      item.className = "upload deleted";
      linkRow.replaceChildren(el("s", { className: "link", textContent: drop.url }));
      actions.remove();
      parts.message.textContent = "Deleted.";
      say(parts.filename + " deleted");
    });
    return copy;
  }

  function startUpload(file, options, token) {
    const filename = file.name || "(unnamed)";
    const item = el("li", { className: "upload", tabIndex: -1 });
    const bar = el("progress", { max: file.size || 1, value: 0 });
    bar.setAttribute("aria-label", "Upload of " + filename);
    const stats = el("p", { className: "stats", textContent: "Starting…" });
    const cancel = el("button",
      { type: "button", className: "cancel secondary", textContent: "Cancel" });
    cancel.setAttribute("aria-label", "Cancel upload of " + filename);
    const cancelRow = el("p", { className: "actions" }, cancel);
    const message = el("p", { className: "message" });
    const parts = { filename, message };
    item.append(el("p", { className: "name", textContent: filename }), bar, stats, cancelRow,
                message);

    function finish(state, text) {
      inFlight -= 1;
      item.className = "upload " + state;
      const focusHere = item.contains(document.activeElement);
      bar.remove();
      cancelRow.remove();
      stats.remove();
      message.textContent = text;
      return focusHere;
    }

    function fail(reason, code) {
      const focusHere = finish("failed", "Upload failed: " + reason);
      say(filename + ": upload failed: " + reason);
      if (code === 401 && tokenInput()) tokenInput().focus();
      else if (focusHere) item.focus();
    }

    const body = new FormData();
    // Options first: the server acts on them (a taken slug, a bad expiry) before the file.
    for (const [name, value] of options) body.append(name, value);
    body.append("file", file, file.name);
    const xhr = new XMLHttpRequest();
    const speed = speedMeter(3000);
    xhr.open("POST", endpoint);
    xhr.setRequestHeader("Accept", "application/json");
    if (token) xhr.setRequestHeader("Authorization", "Bearer " + token);

    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable) return;
      bar.max = event.total;
      bar.value = event.loaded;
      const rate = speed(event.loaded);
      const percent = Math.floor((event.loaded * 100) / event.total);
      const left = rate > 0
        ? " · " + formatTime((event.total - event.loaded) / rate) + " left" : "";
      stats.textContent = formatSize(event.loaded) + " of " + formatSize(event.total) +
        " · " + percent + "% · " + formatSize(Math.round(rate)) + "/s" + left;
    });
    xhr.upload.addEventListener("load", () => {
      // Every byte is out: the server may store the file any moment now, and a cancel
      // could no longer promise that nothing was kept.
      moveFocusFrom(cancelRow, item);
      cancelRow.remove();
      stats.textContent = formatSize(file.size) + " sent · finishing…";
    });
    xhr.addEventListener("load", () => {
      let drop = null;
      try { drop = JSON.parse(xhr.responseText); } catch (_) { drop = null; }
      if (xhr.status !== 201 || !drop || typeof drop.url !== "string") {
        fail(serverReason(xhr.responseText, xhr.status), xhr.status);
        return;
      }
      const focusHere = finish("done", "");
      const copy = showDrop(item, parts, drop);
      say(filename + " uploaded: " + drop.url);
      if (focusHere) copy.focus();
      if (token) document.dispatchEvent(new CustomEvent(UPLOADED, { detail: drop }));
    });
    xhr.addEventListener("error", () => fail("the connection failed", 0));
    xhr.addEventListener("abort", () => {
      const focusHere = finish("cancelled", "Cancelled: nothing was stored.");
      say("Upload of " + filename + " cancelled");
      if (focusHere) item.focus();
    });
    cancel.addEventListener("click", () => xhr.abort());

    inFlight += 1;
    xhr.send(body);
    return item;
  }

  // --- many files -----------------------------------------------------------------------

  function startAll(files) {
    if (!files.length) return;
    if (!form.reportValidity()) return; // the browser points at the bad option
    // An empty field means the default; a password is taken as typed, spaces and all.
    const options = [...new FormData(form)]
      .filter(([name, value]) => name !== "file" && typeof value === "string" &&
              (name === "password" ? value !== "" : value.trim()));
    if (files.length > 1 && slugInput && slugInput.value.trim()) {
      say("A custom link name is for one file: choose a single file or clear the name.");
      slugInput.focus();
      return;
    }
    const token = currentToken();
    if (privateInput && privateInput.checked && !token) {
      say("A private file needs your token: enter it first.");
      (tokenInput() || privateInput).focus();
      return;
    }
    const batch = document.createDocumentFragment();
    for (const file of files) batch.append(startUpload(file, options, token));
    list.prepend(batch);
    say("Uploading " + (files.length === 1 ? files[0].name : files.length + " files"));
  }

  fileInput.addEventListener("change", () => {
    const files = [...fileInput.files];
    startAll(files);
    fileInput.value = ""; // the same file can be picked again
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault(); // Enter in an option field: offer the picker instead of a page load
    fileInput.click();
  });

  // --- drag and drop, anywhere on the page ----------------------------------------------

  const carriesFiles = (event) =>
    !!event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  let dragDepth = 0;

  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth += 1;
    zone.classList.add("over");
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) zone.classList.remove("over");
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault(); // without this the browser opens the file instead
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    zone.classList.remove("over");
    // A dropped folder is listed as a file that cannot be read: keep real files only.
    const entries = [...(event.dataTransfer.items || [])]
      .map((item) => [item, item.webkitGetAsEntry ? item.webkitGetAsEntry() : null]);
    const folders = entries.filter(([, entry]) => entry && entry.isDirectory).length;
    const files = folders
      ? entries.filter(([, entry]) => !entry || entry.isFile).map(([item]) => item.getAsFile())
          .filter(Boolean)
      : [...event.dataTransfer.files];
    startAll(files);
    if (folders) say("Folders cannot be uploaded: put them in an archive first.");
  });

  window.addEventListener("beforeunload", (event) => {
    if (inFlight > 0) {
      event.preventDefault();
      event.returnValue = ""; // older browsers need a value to ask
    }
  });
}

main();
