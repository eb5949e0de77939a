// teledrop's upload page. Without this script (or without the tus client it drives, which
// `make` installs from npm into static/vendor/) the page is a plain multipart form; with
// it, every dropped or picked file goes up as its own resumable tus upload (/api/uploads),
// with a progress bar, a Cancel button and, once stored, the link, Copy, Share, its QR
// code and a Delete button. A dropped connection pauses the upload, which goes on from the
// server's offset when the browser is back online (or on Resume); after a reload, picking
// the same file again resumes it. Where the server has no tus (a serverless host: the form
// says data-uploads="direct"), each file goes up as a direct upload instead (./direct.js),
// its parts straight to the bucket. Data from files and the server is written with
// textContent only, never parsed as HTML.

import {
  ROOT, UPLOADED, announcer, currentToken, describeSize, el, formatSize, localTime,
  moveFocusFrom, relativeTime, serverReason, shareSection, tokenInput,
} from "./shared.js";
import { DirectUpload } from "./direct.js";

function main() {
  const form = document.getElementById("upload");
  if (!form || !window.FormData) return;
  const direct = form.dataset.uploads === "direct";
  if (!direct && (!window.tus || !tus.isSupported)) return;
  document.documentElement.classList.replace("no-js", "js");

  const fileInput = document.getElementById("file");
  const zone = document.getElementById("drop-zone");
  const list = document.getElementById("uploads");
  const slugInput = document.getElementById("slug");
  const privateInput = document.getElementById("private");
  const endpoint = form.action; // absolute: the app's root, where the form would post
  const uploadEndpoint = new URL(direct ? "api/direct-uploads" : "api/uploads", ROOT).href;
  const say = announcer(document.getElementById("status"));
  const optionsBox = document.getElementById("options");
  const optionsSummary = document.getElementById("options-summary");
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

  // --- one file -------------------------------------------------------------------------

  function details(pairs) {
    const dl = el("dl");
    for (const [term, value] of pairs) {
      dl.append(el("dt", { textContent: term }), el("dd", {}, value));
    }
    return dl;
  }

  function expiry(iso) {
    const date = new Date(iso);
    if (isNaN(date)) return String(iso);
    return el("span", {}, el("time", { className: "expiry", dateTime: iso,
                                       textContent: localTime(date) }),
              " ", el("span", { className: "relative", textContent: "(" + relativeTime(date) + ")" }));
  }

  function showDrop(item, parts, drop) {
    const { section, copy } = shareSection(drop.url, parts.filename, say);
    const del = el("button",
      { type: "button", className: "delete secondary", textContent: "Delete" });
    del.setAttribute("aria-label", "Delete " + parts.filename);
    const info = details([
      ["Size", describeSize(drop.size)],
      ["Hash", el("code", { textContent: drop.hash })],
      ["Expires", expiry(drop.expires_at)],
      ["Downloads", drop.max_downloads == null ? "unlimited" : "at most " + drop.max_downloads],
      ["Delete token", el("code", { className: "token", textContent: drop.delete_token || "" })],
    ]);
    if (drop.title) info.prepend(el("dt", { textContent: "Title" }), el("dd", {}, drop.title));
    const access = [drop.private && "private", drop.has_password && "password"].filter(Boolean);
    if (access.length) {
      info.append(el("dt", { textContent: "Access" }), el("dd", {}, access.join(", ")));
    }
    const actions = el("p", { className: "actions" }, del);
    item.append(section, info, actions, parts.message); // messages about this drop go last

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
      section.replaceChildren(el("s", { className: "link", textContent: drop.url }));
      actions.remove();
      parts.message.textContent = "Deleted.";
      say(parts.filename + " deleted");
    });
    return copy;
  }

  // The options of an upload, as tus metadata (the password travels in a header only).
  function tusMetadata(file, options) {
    const metadata = { filename: file.name || "(unnamed)",
                       filetype: file.type || "application/octet-stream" };
    for (const [name, value] of options) if (name !== "password") metadata[name] = value;
    return metadata;
  }

  const sameMetadata = (a, b) => {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b || {}).length && keys.every((k) => a[k] === b[k]);
  };

  // A creation refused (a taken slug, a bad option, no token) is final; a lost connection,
  // a server error or an upload busy on another request (423) is tried again, and a PATCH
  // at a stale offset (409) too: the client asks the server where to resume.
  function shouldRetry(error) {
    const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
    const creating = error.originalRequest && error.originalRequest.getMethod() === "POST";
    if (!navigator.onLine) return false; // resumed by the "online" event instead
    return status === 0 || status >= 500 || status === 423 || (status === 409 && !creating);
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
    const resume = el("button",
      { type: "button", className: "resume", textContent: "Resume", hidden: true });
    resume.setAttribute("aria-label", "Resume upload of " + filename);
    const cancelRow = el("p", { className: "actions" }, resume, cancel);
    const message = el("p", { className: "message" });
    const parts = { filename, message };
    item.append(el("p", { className: "name", textContent: filename }), bar, stats, cancelRow,
                message);
    const speed = speedMeter(3000);
    let finished = false;
    let cancelled = false;

    function finish(state, text) {
      finished = true;
      inFlight -= 1;
      window.removeEventListener("online", restart);
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

    // Stopped with bytes on the server: the upload waits, and goes on from where it stopped.
    let paused = false;
    function pause(text) {
      paused = true;
      item.classList.add("paused");
      message.textContent = text;
      resume.hidden = false;
      say(filename + ": " + text);
    }

    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const password = options.find(([name]) => name === "password");
    if (password) headers["X-Drop-Password"] = password[1];
    const metadata = tusMetadata(file, options);
    const upload = new (direct ? DirectUpload : tus.Upload)(file, {
      endpoint: uploadEndpoint,
      metadata,
      fields: options,
      headers,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      removeFingerprintOnSuccess: true,
      onShouldRetry: shouldRetry,
      // Cancelled while the server was creating it: remove it as soon as it has an address.
      onUploadUrlAvailable() {
        if (cancelled) upload.abort(true).catch(() => {});
      },
      onProgress(loaded, total) {
        bar.max = total || 1;
        bar.value = loaded;
        const rate = speed(loaded);
        const percent = total ? Math.floor((loaded * 100) / total) : 100;
        const left = rate > 0 ? " · " + formatTime((total - loaded) / rate) + " left" : "";
        stats.textContent = formatSize(loaded) + " of " + formatSize(total) +
          " · " + percent + "% · " + formatSize(Math.round(rate)) + "/s" + left;
        if (loaded === total) {
          // Every byte is out: the server may store the file any moment now, and a cancel
          // could no longer promise that nothing was kept.
          moveFocusFrom(cancelRow, item);
          cancelRow.hidden = true;
          stats.textContent = formatSize(total) + " sent · finishing…";
        }
      },
      async onSuccess({ lastResponse, drop: completed }) {
        if (finished) return;
        const url = lastResponse.getHeader("X-Drop-Url");
        const deleteToken = lastResponse.getHeader("X-Delete-Token");
        let drop = completed || null; // a direct upload's completion answers the drop
        if (!drop) {
          try {
            const response = await fetch(upload.url, { headers: { Accept: "application/json" } });
            drop = response.ok ? await response.json() : null;
          } catch (_) { drop = null; }
        }
        if (!drop || typeof drop.url !== "string") {
          drop = url ? { url, slug: new URL(url).pathname.split("/").pop(), size: file.size }
            : null;
        }
        if (!drop) { fail("the server did not say where the file is", 0); return; }
        drop.delete_token = deleteToken || "";
        const focusHere = finish("done", "");
        const copy = showDrop(item, parts, drop);
        say(filename + " uploaded: " + drop.url);
        if (focusHere) copy.focus();
        if (token) document.dispatchEvent(new CustomEvent(UPLOADED, { detail: drop }));
      },
      onError(error) {
        if (finished) return;
        const response = error.originalResponse;
        if (!response || response.getStatus() === 0 || response.getStatus() >= 500) {
          if (upload.url) {
            pause(navigator.onLine
              ? "Paused: the connection failed. Resume goes on from where it stopped."
              : "Offline: the upload goes on when the connection is back.");
            return;
          }
          if (!navigator.onLine) { pause("Offline: the upload starts when the connection is back."); return; }
        }
        fail(response ? serverReason(response.getBody(), response.getStatus())
          : "the connection failed", response ? response.getStatus() : 0);
      },
    });

    function restart() {
      if (finished || !paused) return; // a running upload needs no second start
      paused = false;
      item.classList.remove("paused");
      message.textContent = "";
      moveFocusFrom(resume, cancel);
      resume.hidden = true;
      upload.start();
    }
    window.addEventListener("online", restart);
    resume.addEventListener("click", restart);
    cancel.addEventListener("click", () => {
      cancelled = true;
      // Before the server has answered its creation, the upload has no address to remove
      // yet: it is let through, and removed when it has one.
      if (upload.url) upload.abort(true).catch(() => { /* gone already: nothing is kept */ });
      const focusHere = finish("cancelled", "Cancelled: nothing was stored.");
      say("Upload of " + filename + " cancelled");
      if (focusHere) item.focus();
    });

    inFlight += 1;
    // A file picked again after a reload or a lost page goes on where its upload stopped,
    // if it is going up with the same options.
    upload.findPreviousUploads().then((previous) => {
      const same = previous.filter((p) => sameMetadata(metadata, p.metadata))
        .sort((a, b) => String(b.creationTime).localeCompare(String(a.creationTime)));
      if (same.length) {
        upload.resumeFromPreviousUpload(same[0]);
        stats.textContent = "Resuming…";
      }
      upload.start();
    }, () => upload.start());
    return item;
  }

  // --- many files -----------------------------------------------------------------------

  function startAll(files) {
    if (!files.length) return;
    if (!form.checkValidity()) {
      optionsBox.open = true; // the browser can point only at a field on show
      form.reportValidity();
      return;
    }
    // An empty field means the default; a password is taken as typed, spaces and all.
    const options = [...new FormData(form)]
      .filter(([name, value]) => name !== "file" && typeof value === "string" &&
              (name === "password" ? value !== "" : value.trim()));
    if (files.length > 1 && slugInput && slugInput.value.trim()) {
      say("A custom link name is for one file: choose a single file or clear the name.");
      optionsBox.open = true;
      slugInput.focus();
      return;
    }
    const token = currentToken();
    if (privateInput && privateInput.checked && !token) {
      say("A private file needs your token: enter it first.");
      optionsBox.open = true;
      (tokenInput() || privateInput).focus();
      return;
    }
    const batch = document.createDocumentFragment();
    for (const file of files) batch.append(startUpload(file, options, token));
    list.prepend(batch);
    say("Uploading " + (files.length === 1 ? files[0].name : files.length + " files"));
  }

  // --- the folded options --------------------------------------------------------------

  // The summary says what an upload gets now: "expires in 7 days, unlimited downloads".
  function describeOptions() {
    const data = new FormData(form);
    const expires = form.elements.expires;
    const words = ["expires in " + expires.options[expires.selectedIndex].text];
    const most = String(data.get("max_downloads") || "").trim();
    words.push(most ? (most === "1" ? "1 download" : "at most " + most + " downloads")
      : "unlimited downloads");
    if (String(data.get("slug") || "").trim()) words.push("custom link");
    if (data.get("password")) words.push("password");
    if (data.get("private")) words.push("private");
    optionsSummary.textContent = words.join(", ");
  }
  form.addEventListener("input", describeOptions);
  form.addEventListener("change", describeOptions);
  describeOptions();

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
