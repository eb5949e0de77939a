// Direct uploads from the upload page, where the server offers no tus (a serverless host):
// the page asks POST /api/direct-uploads for presigned part URLs, PUTs the parts straight
// to the bucket, several at a time, and completes the upload with each part's ETag. The
// bucket must let this page's origin PUT and read the ETag header (its CORS rule, in
// docs/serverless.md). DirectUpload answers the few calls page.js makes of a tus.Upload,
// so the page drives either the same way; a failed part is tried again, and Resume after
// a lost connection sends only the parts still missing. So does picking the same file
// again after a reload: the page keeps each upload's plan and stored parts in
// localStorage until it is completed, refused or cancelled, or its part URLs expire.

const PARALLEL = 4;
const RETRY_DELAYS = [1000, 3000, 5000];
const KEY_PREFIX = "teledrop-direct::";
// The plan (every part's URL) is kept once; the stored parts' ETags under this suffix, at
// most once a second: writing the whole list after each part would cost a file of
// thousands of parts more than its upload.
const PARTS_SUFFIX = "::parts";
const KEEP_INTERVAL = 1000;

function storage() {
  try { return window.localStorage; } catch (_) { return null; } // disabled storage throws
}

// A file picked again is known by what the browser tells of it, as tus knows it.
function fingerprint(file, endpoint) {
  return KEY_PREFIX + JSON.stringify([endpoint, file.name, file.type, file.size, file.lastModified]);
}

// A refusal as page.js reads a tus client's error.
class Failure extends Error {
  constructor(method, status, body) {
    super(method + " failed" + (status ? ": " + status : ""));
    this.originalRequest = { getMethod: () => method };
    this.originalResponse = status ? { getStatus: () => status, getBody: () => body } : null;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class DirectUpload {
  constructor(file, options) {
    this.file = file;
    this.options = options;
    this.url = null; // the upload's own address, once created
    this.plan = null; // the server's answer: id, part_size, parts
    this.etags = new Map(); // part number -> ETag of the stored part
    this.requests = new Set();
    this.stopped = false; // cancelled
    this.run = null; // the current start(): a failed or cancelled one stops its workers
    this.key = null; // where this upload is kept for a reload, once created
    this.partsTimer = null;
    this.keptAt = 0;
    this.creationTime = null;
    this.resumed = false; // taken over from an earlier page
  }

  // The uploads of this file an earlier page kept, whose part URLs still hold.
  findPreviousUploads() {
    const store = storage();
    const found = [];
    if (!store) return Promise.resolve(found);
    const prefix = fingerprint(this.file, this.options.endpoint) + "::";
    const stale = [];
    for (let i = 0; i < store.length; i += 1) {
      const key = store.key(i);
      if (!key || !key.startsWith(prefix) || key.endsWith(PARTS_SUFFIX)) continue;
      let kept = null;
      let etags = [];
      try {
        kept = JSON.parse(store.getItem(key));
        etags = JSON.parse(store.getItem(key + PARTS_SUFFIX) || "[]");
      } catch (_) { /* not one of ours */ }
      if (kept && kept.plan && Date.parse(kept.plan.expires_at) > Date.now()) {
        found.push({ ...kept, etags, key });
      } else {
        stale.push(key);
      }
    }
    for (const key of stale) {
      store.removeItem(key);
      store.removeItem(key + PARTS_SUFFIX);
    }
    return Promise.resolve(found);
  }

  resumeFromPreviousUpload(previous) {
    this.plan = previous.plan;
    this.url = previous.url;
    this.etags = new Map(previous.etags);
    this.key = previous.key;
    this.creationTime = previous.creationTime;
    this.resumed = true;
  }

  async start() {
    this.stopped = false;
    const run = (this.run = {});
    try {
      if (!this.plan) await this.create();
      await this.sendParts(run);
      if (this.run !== run) return;
      await this.complete();
    } catch (error) {
      if (this.run === run) this.run = null;
      this.halt();
      if (this.stopped) return;
      const status = error.originalResponse ? error.originalResponse.getStatus() : 0;
      if (this.resumed && (status === 403 || status === 404)) {
        // An earlier page's upload that is gone (aborted, collected, its URLs expired):
        // this file starts again as a new one.
        this.forget();
        this.resumed = false;
        this.plan = this.url = null;
        this.etags.clear();
        this.start();
        return;
      }
      // Refused for good (a lost connection is paused instead, for Resume): nothing is kept.
      if (status > 0 && status < 500) this.discard();
      this.options.onError(error);
    }
  }

  // What a later page needs to go on: the plan, once it is made.
  keepPlan() {
    const kept = { plan: this.plan, url: this.url, metadata: this.options.metadata,
                   creationTime: this.creationTime };
    this.write(this.key, JSON.stringify(kept));
  }

  // ... and the parts stored so far, within a second of each.
  keepParts() {
    if (this.partsTimer || !this.key) return; // a write is due already
    const wait = Math.max(0, this.keptAt + KEEP_INTERVAL - Date.now());
    this.partsTimer = setTimeout(() => {
      this.partsTimer = null;
      this.keptAt = Date.now();
      if (this.key) this.write(this.key + PARTS_SUFFIX, JSON.stringify([...this.etags]));
    }, wait);
  }

  write(key, value) {
    const store = storage();
    if (!store || !key) return;
    try { store.setItem(key, value); } catch (_) { /* the storage is full: no resume */ }
  }

  forget() {
    clearTimeout(this.partsTimer);
    this.partsTimer = null;
    const store = storage();
    if (store && this.key) {
      store.removeItem(this.key);
      store.removeItem(this.key + PARTS_SUFFIX);
    }
    this.key = null;
  }

  // Cancel: stop every PUT, and with `terminate` abort the upload on the server.
  abort(terminate) {
    this.stopped = true;
    this.run = null;
    this.halt();
    return terminate ? this.discard() : Promise.resolve();
  }

  discard() {
    this.forget();
    if (!this.url) return Promise.resolve();
    return fetch(this.url, { method: "DELETE", headers: this.options.headers })
      .then(() => {}, () => {});
  }

  halt() {
    for (const xhr of this.requests) xhr.abort();
    this.requests.clear();
  }

  async call(method, url, body) {
    const headers = { ...this.options.headers, "Content-Type": "application/json" };
    let response;
    try {
      response = await fetch(url, { method, headers, body: JSON.stringify(body) });
    } catch (_) {
      throw new Failure(method, 0, "");
    }
    if (!response.ok) throw new Failure(method, response.status, await response.text());
    return response;
  }

  async create() {
    const body = { filename: this.file.name || "(unnamed)", size: this.file.size };
    if (this.file.type) body.content_type = this.file.type;
    // The password travels in the X-Drop-Password header, as with tus.
    for (const [name, value] of this.options.fields) if (name !== "password") body[name] = value;
    const response = await this.call("POST", this.options.endpoint, body);
    this.plan = await response.json();
    this.url = this.options.endpoint + "/" + encodeURIComponent(this.plan.id);
    this.key = fingerprint(this.file, this.options.endpoint) + "::" + this.plan.id;
    this.creationTime = new Date().toISOString();
    this.keepPlan();
    if (this.options.onUploadUrlAvailable) this.options.onUploadUrlAvailable();
  }

  sizeOf(number) {
    return Math.min(this.plan.part_size, this.file.size - (number - 1) * this.plan.part_size);
  }

  async sendParts(run) {
    const total = this.file.size;
    const queue = this.plan.parts.filter((part) => !this.etags.has(part.number));
    let stored = [...this.etags.keys()].reduce((sum, n) => sum + this.sizeOf(n), 0);
    const sending = new Map();
    const report = () => {
      let loaded = stored;
      for (const sent of sending.values()) loaded += sent;
      this.options.onProgress(loaded, total);
    };
    const worker = async () => {
      while (queue.length && this.run === run) {
        const part = queue.shift();
        const etag = await this.putPart(run, part,
          (sent) => { sending.set(part.number, sent); report(); });
        sending.delete(part.number);
        this.etags.set(part.number, etag);
        this.keepParts();
        stored += this.sizeOf(part.number);
        report();
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
  }

  async putPart(run, part, progress) {
    const start = (part.number - 1) * this.plan.part_size;
    const blob = this.file.slice(start, start + this.sizeOf(part.number));
    for (let attempt = 0; ; attempt += 1) {
      if (this.run !== run) throw new Failure("PUT", 0, ""); // failed elsewhere, or cancelled
      const { status, etag } = await this.send(part.url, blob, progress);
      if (status >= 200 && status < 300) {
        if (etag) return etag;
        throw new Failure("PUT", 400, JSON.stringify({ error: { message:
          "the bucket does not let this page read a part's ETag (its CORS rule must expose ETag)" } }));
      }
      const retry = (status === 0 || status >= 500) && attempt < RETRY_DELAYS.length && navigator.onLine;
      if (!retry) throw new Failure("PUT", status, "");
      progress(0);
      await sleep(RETRY_DELAYS[attempt]);
    }
  }

  send(url, blob, progress) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      this.requests.add(xhr);
      const settle = () => {
        this.requests.delete(xhr);
        resolve({ status: xhr.status, etag: xhr.status ? xhr.getResponseHeader("ETag") : null });
      };
      xhr.open("PUT", url);
      xhr.upload.onprogress = (event) => progress(event.loaded);
      xhr.onload = xhr.onerror = xhr.onabort = xhr.ontimeout = settle;
      xhr.send(blob);
    });
  }

  async complete() {
    const parts = [...this.etags].sort((a, b) => a[0] - b[0])
      .map(([number, etag]) => ({ number, etag }));
    const response = await this.call("POST", this.url + "/complete", { parts });
    this.forget(); // completed: nothing to go on with
    const drop = await response.json();
    this.options.onSuccess({ lastResponse: { getHeader: (name) => response.headers.get(name) },
                             drop });
  }
}
