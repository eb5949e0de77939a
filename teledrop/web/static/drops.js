// "My drops": the files uploaded with this browser's token, from GET /api/drops, with the
// page's search, sort, filters and pages; each row has its link, an Edit dialog (PATCH
// /api/drops/SLUG) and Delete (DELETE /SLUG with the token). The server's one-line reasons
// are shown as they are. Without this script the section stays hidden: the token travels in
// a header, which a plain link or form cannot send.

import {
  ROOT, UPLOADED, announcer, currentToken, describeSize, el, formatSize, safeHref,
  serverReason, tokenInput,
} from "./shared.js";

const byId = (id) => document.getElementById(id);
// Short dates in the reader's own language and time zone; the year only when it is not
// this one.
const DATE = new Intl.DateTimeFormat(undefined,
  { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" });
const DATE_YEAR = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const FULL_DATE = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
// The columns the server can sort by, and their header cells' positions.
const SORTED_COLUMN = { filename: 0, title: 1, size: 2, created_at: 3 };
// A header value is visible ASCII: anything else would make fetch throw, not ask.
const HEADER_SAFE = /^[\x21-\x7e]+$/;

function main() {
  const section = byId("my-drops");
  if (!section || !window.fetch || !window.HTMLDialogElement) return;
  section.hidden = false;

  const query = byId("drops-query");
  const search = byId("drops-q");
  const region = byId("drops-region");
  const table = byId("drops-table");
  const rows = byId("drops-body");
  const pager = byId("drops-pager");
  const prev = byId("drops-prev");
  const next = byId("drops-next");
  const pageLabel = byId("drops-page");
  const say = announcer(byId("drops-status"));
  let page = 1;
  let pages = 1;
  let loading = null;

  // --- talking to the server ------------------------------------------------------------

  // The response to one request with the token, or the reason there is none. An abort (a
  // newer list request) is thrown to the caller.
  async function send(method, path, { body, signal, accept = "application/json" } = {}) {
    const token = currentToken();
    if (!HEADER_SAFE.test(token)) {
      return { reason: "the token can only have visible ASCII characters" };
    }
    const headers = { Accept: accept, Authorization: "Bearer " + token };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      return { response: await fetch(new URL(path, ROOT),
                                     { method, headers, body, signal, cache: "no-store" }) };
    } catch (error) {
      if (error.name === "AbortError") throw error;
      return { reason: "the connection failed" };
    }
  }

  // Status (0: no answer), body and one-line reason of a JSON request.
  async function request(method, path, body, signal) {
    const { response, reason } = await send(method, path, { body, signal });
    if (!response) return { status: 0, reason };
    const text = await response.text();
    return { status: response.status, text, reason: serverReason(text, response.status) };
  }

  function listQuery() {
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(query)) {
      if (typeof value === "string" && value.trim()) params.set(name, value.trim());
    }
    params.set("page", String(page));
    return params;
  }

  function filtered() {
    return ["q", "private", "has_password", "expired"]
      .some((name) => (query.elements[name].value || "").trim());
  }

  function clear() {
    rows.replaceChildren();
    table.hidden = true;
    pager.hidden = true;
  }

  // Fetch and show the current page. `note` is said before the summary (what just
  // happened); the promise ends when the list is on screen.
  async function load(note = "") {
    if (loading) loading.abort();
    const prefix = note ? note + " " : "";
    if (!currentToken()) {
      clear();
      say(prefix + "Enter your token to see the files you uploaded with it.");
      return;
    }
    const controller = new AbortController();
    loading = controller;
    section.setAttribute("aria-busy", "true");
    let result;
    try {
      result = await request("GET", "api/drops?" + listQuery(), undefined, controller.signal);
    } catch (_) {
      return; // superseded by a newer request, which owns the list now
    } finally {
      if (loading === controller) {
        loading = null;
        section.removeAttribute("aria-busy");
      }
    }
    let data = null;
    try {
      data = result.status === 200 ? JSON.parse(result.text) : null;
    } catch (_) {
      data = null;
    }
    if (!data || !Array.isArray(data.drops)) {
      clear();
      const input = tokenInput();
      if (result.status === 401 && input) input.setAttribute("aria-invalid", "true");
      say(prefix + "Your drops could not be listed: " +
          (data ? "the server's answer was not understood" : result.reason));
      return;
    }
    const last = Math.max(1, Math.ceil(data.total / data.page_size));
    if (!data.drops.length && page > last) {
      page = last; // the last page emptied (a delete, a filter): show the one before
      await load(note);
      return;
    }
    show(data, last);
    say(prefix + summary(data));
  }

  function summary(data) {
    if (!data.total) {
      return filtered() ? "No drops match." : "No drops yet: upload a file with your token.";
    }
    const count = data.total === 1 ? "1 drop" : data.total + " drops";
    return pages > 1 ? `${count}, page ${page} of ${pages}.` : count + ".";
  }

  // --- the table --------------------------------------------------------------------------

  function time(iso) {
    const date = new Date(iso);
    if (isNaN(date)) return String(iso);
    const format = date.getFullYear() === new Date().getFullYear() ? DATE : DATE_YEAR;
    return el("time", { dateTime: iso, textContent: format.format(date),
                        title: FULL_DATE.format(date) });
  }

  function badge(text, kind) {
    return el("span", { className: "badge " + kind, textContent: text });
  }

  function cell(label, ...content) {
    const td = el("td", {}, ...content);
    td.dataset.label = label; // narrow screens show each cell with its column's name
    return td;
  }

  function row(drop) {
    const href = safeHref(drop.url);
    const link = href
      ? el("a", { className: "drop-link", href, textContent: drop.filename })
      : el("span", { className: "drop-link", textContent: drop.filename });
    if (href && (drop.private || drop.has_password)) {
      link.title = "Downloads with your token";
      link.addEventListener("click", (event) => {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        ownerDownload(drop);
      });
    }
    const expired = new Date(drop.expires_at).getTime() <= Date.now();
    const used = drop.max_downloads != null && drop.downloads >= drop.max_downloads;
    const badges = [
      drop.private && badge("Private", "private"),
      drop.has_password && badge("Password", "password"),
      expired && badge("Expired", "gone"),
      used && !expired && badge("No downloads left", "gone"),
    ].filter(Boolean);
    const edit = el("button", { type: "button", className: "edit secondary", textContent: "Edit" });
    const del = el("button",
      { type: "button", className: "delete secondary", textContent: "Delete" });
    edit.setAttribute("aria-label", "Edit " + drop.filename);
    del.setAttribute("aria-label", "Delete " + drop.filename);
    edit.addEventListener("click", () => openEditor(drop, edit));
    del.addEventListener("click", () => remove(drop, del));

    const title = cell("Title", ...(drop.title ? [drop.title] : []));
    if (drop.description) {
      title.append(el("span", { className: "description", textContent: drop.description }));
    }
    const size = cell("Size", formatSize(drop.size));
    size.title = describeSize(drop.size);
    const tr = el("tr", {},
      cell("File", link, el("span", { className: "slug", textContent: drop.slug })),
      title,
      size,
      cell("Uploaded", time(drop.created_at)),
      cell("Expires", time(drop.expires_at)),
      cell("Downloads", drop.max_downloads == null
        ? String(drop.downloads) : `${drop.downloads} of ${drop.max_downloads}`),
      cell("Access", ...(badges.length
        ? badges : [el("span", { className: "anyone", textContent: "Anyone with the link" })])),
      el("td", { className: "row-actions" }, el("div", { className: "buttons" }, edit, del)));
    tr.dataset.slug = drop.slug;
    if (expired || used) tr.className = "gone";
    return tr;
  }

  function show(data, last) {
    pages = last;
    rows.replaceChildren(...data.drops.map(row));
    table.hidden = data.drops.length === 0;
    pager.hidden = pages <= 1;
    pageLabel.textContent = `Page ${page} of ${pages}`;
    // aria-disabled, not disabled: a disabled button drops the keyboard focus.
    prev.setAttribute("aria-disabled", String(page <= 1));
    next.setAttribute("aria-disabled", String(page >= pages));
    const sort = query.elements.sort.value;
    const order = query.elements.order.value === "asc" ? "ascending" : "descending";
    table.querySelectorAll("thead th").forEach((th, i) => {
      if (SORTED_COLUMN[sort] === i) th.setAttribute("aria-sort", order);
      else th.removeAttribute("aria-sort");
    });
  }

  function rowButton(slug, kind) {
    const tr = [...rows.rows].find((r) => r.dataset.slug === slug);
    return tr ? tr.querySelector("button." + kind) : null;
  }

  // A private drop is 404 and a protected one asks for its password, to anyone without the
  // token, and a plain link cannot send it: for those the owner's click fetches the file
  // with the token and saves it. (Chromium keeps a large blob on disk, not in memory.)
  async function ownerDownload(drop) {
    // The file whatever its type; a refusal as JSON, with its reason.
    const { response, reason } = await send("GET", encodeURIComponent(drop.slug),
                                            { accept: "application/json, */*;q=0.1" });
    if (!response || !response.ok) {
      const why = response ? serverReason(await response.text(), response.status) : reason;
      say(`${drop.filename} was not downloaded: ${why}`);
      return;
    }
    const href = URL.createObjectURL(await response.blob());
    const save = el("a", { href, download: drop.filename, hidden: true });
    document.body.append(save);
    save.click();
    save.remove();
    setTimeout(() => URL.revokeObjectURL(href), 60_000);
  }

  // --- delete -----------------------------------------------------------------------------

  async function remove(drop, button) {
    if (button.getAttribute("aria-disabled") === "true") return;
    if (!window.confirm(`Delete ${drop.filename}? Its link stops working.`)) return;
    button.setAttribute("aria-disabled", "true");
    const result = await request("DELETE", encodeURIComponent(drop.slug));
    if (result.status !== 204) {
      button.removeAttribute("aria-disabled");
      say(`${drop.filename} was not deleted: ${result.reason}`);
      return;
    }
    const focusHere = rows.contains(document.activeElement);
    await load(`${drop.filename} deleted.`);
    if (focusHere || document.activeElement === document.body) region.focus();
  }

  // --- edit -------------------------------------------------------------------------------

  const dialog = byId("edit-dialog");
  const editForm = byId("edit-form");
  const field = {
    title: byId("edit-title"),
    description: byId("edit-description"),
    expires: byId("edit-expires"),
    maxDownloads: byId("edit-max-downloads"),
    private: byId("edit-private"),
    password: byId("edit-password"),
    clearPassword: byId("edit-clear-password"),
  };
  const editError = byId("edit-error");
  const save = byId("edit-save");
  let editing = null;
  let opener = null;

  function openEditor(drop, button) {
    editing = drop;
    opener = button;
    byId("edit-name").textContent = drop.filename;
    field.title.value = drop.title || "";
    field.description.value = drop.description || "";
    field.expires.value = "";
    byId("edit-expires-now").replaceChildren(time(drop.expires_at));
    field.maxDownloads.value = drop.max_downloads == null ? "" : String(drop.max_downloads);
    byId("edit-downloads").textContent =
      drop.downloads === 1 ? "once" : drop.downloads + " times";
    field.private.checked = !!drop.private;
    field.password.value = "";
    field.password.disabled = false;
    field.clearPassword.checked = false;
    byId("edit-clear-row").hidden = !drop.has_password;
    byId("edit-password-hint").textContent = drop.has_password
      ? "Empty: keep the current password." : "Empty: no password.";
    editError.textContent = "";
    save.removeAttribute("aria-disabled");
    dialog.showModal();
    field.title.focus();
  }

  field.clearPassword.addEventListener("change", () => {
    field.password.disabled = field.clearPassword.checked;
    if (field.clearPassword.checked) field.password.value = "";
  });

  // The fields that differ from the drop, as PATCH takes them; a string is a problem to
  // show instead. Values go to the server as typed: its reasons are the rules.
  function changes(drop) {
    const changed = {};
    for (const name of ["title", "description"]) {
      if (field[name].value.trim() !== (drop[name] || "")) changed[name] = field[name].value;
    }
    if (field.expires.value) changed.expires = field.expires.value;
    if (field.maxDownloads.validity.badInput) {
      return "The download limit is a whole number; leave it empty for no limit.";
    }
    const max = field.maxDownloads.value.trim();
    const wanted = max === "" ? null : Number(max);
    // JSON would turn an overflow into null: "no limit", the opposite of what was typed.
    if (wanted !== null && !Number.isFinite(wanted)) return "The download limit is too large.";
    if (wanted !== drop.max_downloads) changed.max_downloads = wanted;
    if (field.private.checked !== !!drop.private) changed.private = field.private.checked;
    if (field.clearPassword.checked) changed.password = null;
    else if (field.password.value !== "") changed.password = field.password.value;
    return changed;
  }

  editForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!editing || save.getAttribute("aria-disabled") === "true") return;
    const drop = editing;
    const changed = changes(drop);
    if (typeof changed === "string") {
      editError.textContent = changed;
      field.maxDownloads.focus();
      return;
    }
    if (!Object.keys(changed).length) {
      dialog.close();
      say(`Nothing changed in ${drop.filename}.`);
      return;
    }
    save.setAttribute("aria-disabled", "true");
    editError.textContent = "";
    const result = await request("PATCH", "api/drops/" + encodeURIComponent(drop.slug),
                                 JSON.stringify(changed));
    save.removeAttribute("aria-disabled");
    if (result.status !== 200) {
      editError.textContent = "Not saved: " + result.reason;
      return;
    }
    editing = null;
    dialog.close();
    await load(`Saved ${drop.filename}.`);
    (rowButton(drop.slug, "edit") || region).focus();
  });

  byId("edit-cancel").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    editing = null;
    field.password.value = ""; // a typed password stays nowhere it is not needed
    if (opener && opener.isConnected && !section.contains(document.activeElement)) {
      opener.focus();
    }
  });

  // --- what reloads the list ---------------------------------------------------------------

  let typing = 0;
  function fromFirstPage() {
    clearTimeout(typing);
    page = 1;
    load();
  }

  query.addEventListener("submit", (event) => {
    event.preventDefault();
    fromFirstPage();
  });
  query.addEventListener("change", (event) => {
    if (event.target !== search) fromFirstPage();
  });
  search.addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(fromFirstPage, 300);
  });

  function turn(button, step) {
    button.addEventListener("click", () => {
      if (button.getAttribute("aria-disabled") === "true") return;
      page += step;
      load();
    });
  }
  turn(prev, -1);
  turn(next, +1);

  const input = tokenInput();
  if (input) {
    input.addEventListener("change", fromFirstPage);
    input.addEventListener("keydown", (event) => {
      // In the upload form, Enter would open the file picker: here it means "list".
      if (event.key === "Enter" && input.id === "owner-token") {
        event.preventDefault();
        fromFirstPage();
      }
    });
  }
  document.addEventListener(UPLOADED, () => load());

  load();
}

main();
