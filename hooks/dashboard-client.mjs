/**
 * Delivers events to an OpenCode Dashboard's `POST /api/events` (the ingest contract, EVENTS.md):
 * batched, retried with exponential backoff and jitter, and spooled to disk while the dashboard is down.
 *
 * A plain ES module with no dependencies, for Node >= 20 and Bun (which runs opencode's plugins). The
 * opencode plugin (dashboard-hook.js) is a thin adapter over `DashboardClient`; scripts can use it too.
 *
 * Guarantees, in short:
 * - Every event gets its id once, when it is sent to the client; a retry resends the same id, and the
 *   dashboard acknowledges a repeated id as a duplicate instead of applying it twice.
 * - Network errors, 408, 429 and 5xx are retried (full-jitter exponential backoff, never sooner than a
 *   `Retry-After`); any other 4xx is final: logged and dropped. A 422 names the event at fault
 *   (`events[3]...`): only that one is dropped and the rest of the batch is sent again.
 * - A batch that cannot be delivered goes to the spool: JSON lines in segment files under `spoolDir`.
 *   While anything is spooled, new events are appended behind it, so the dashboard receives them in
 *   order once it answers again. The spool outlives the process: a later client with the same spool
 *   directory adopts the segments of processes that are gone, and drains them first.
 */

import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync,
  unlinkSync, writeFileSync, writeSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";

const MIB = 1024 * 1024;

export const DEFAULTS = Object.freeze({
  url: "http://127.0.0.1:3000",
  batchMs: 200, // how long the first event of a batch waits for company
  batchMax: 100, // events per request (the dashboard takes up to 1 000)
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  requestTimeoutMs: 10_000,
  spoolMaxBytes: 64 * MIB,
  closeTimeoutMs: 2_000,
  orphanScanMs: 30_000, // how often to look for spool segments left by processes that are gone
});

/** The client's settings from the environment (see the README's "The agent-side hook"). */
export function configFromEnv(env = process.env) {
  const number = (name, fallback) => {
    const value = Number(env[name]);
    return env[name] !== undefined && env[name] !== "" && Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  return {
    url: env.DASHBOARD_URL || DEFAULTS.url,
    apiKey: env.DASHBOARD_API_KEY || "",
    agentId: env.DASHBOARD_AGENT_ID || undefined,
    spoolDir: env.DASHBOARD_SPOOL_DIR || defaultSpoolDir(env),
    batchMs: number("DASHBOARD_BATCH_MS", DEFAULTS.batchMs),
    batchMax: Math.min(1000, Math.max(1, number("DASHBOARD_BATCH_MAX", DEFAULTS.batchMax))),
    retryBaseMs: number("DASHBOARD_RETRY_BASE_MS", DEFAULTS.retryBaseMs),
    retryMaxMs: number("DASHBOARD_RETRY_MAX_MS", DEFAULTS.retryMaxMs),
    requestTimeoutMs: number("DASHBOARD_TIMEOUT_MS", DEFAULTS.requestTimeoutMs),
    spoolMaxBytes: number("DASHBOARD_SPOOL_MAX_BYTES", DEFAULTS.spoolMaxBytes),
  };
}

export function defaultSpoolDir(env = process.env) {
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(state, "opencode-dashboard", "spool");
}

export function newEventId() {
  return `evt_${randomUUID().replaceAll("-", "")}`;
}

/** A refusal that retrying cannot change (a 4xx other than 408 and 429). */
export class DashboardError extends Error {
  constructor(message, status, body) {
    super(message);
    this.name = "DashboardError";
    this.status = status;
    this.body = body;
  }
}

export function isRetryable(status) {
  return status === 408 || status === 429 || status >= 500;
}

/** Full jitter (a random wait up to base·2^attempt, capped), but never before the server's Retry-After. */
export function backoffDelay(attempt, { retryBaseMs, retryMaxMs }, retryAfterMs = 0, random = Math.random) {
  const ceiling = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(attempt, 30));
  return Math.max(retryAfterMs || 0, Math.floor(random() * ceiling));
}

/** `Retry-After` in milliseconds, whether given in seconds or as an HTTP date; 0 when absent or unreadable. */
export function retryAfterMs(header, now = Date.now()) {
  if (!header) return 0;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

export class DashboardClient {
  /**
   * @param {object} [options] anything from `configFromEnv` to override, plus `env` (read instead of
   *   process.env), `log(message)` and `fetch` (for a runtime without a global one).
   */
  constructor(options = {}) {
    const { env, log, fetch, ...overrides } = options;
    this.config = { ...configFromEnv(env ?? process.env), ...withoutUndefined(overrides) };
    this.config.url = this.config.url.replace(/\/+$/, "");
    this.log = log ?? ((message) => console.error(`[dashboard-hook] ${message}`));
    this.fetch = fetch ?? globalThis.fetch.bind(globalThis);
    this.stats = { posts: 0, accepted: 0, duplicates: 0, dropped: 0, spooled: 0 };
    this.queue = []; // entries {event, key} not yet sent, oldest first
    this.byKey = new Map(); // coalescing key -> its entry still in the queue
    this.inflight = null; // events of the request under way, when they came from the queue
    this.failures = 0; // consecutive failed deliveries: the backoff's exponent
    this.stopping = false;
    this.pumping = null;
    this.windowTimer = null;
    this.idleWaiters = [];
    this.abort = new AbortController();
    this.spool = new Spool(this.config.spoolDir, { maxBytes: this.config.spoolMaxBytes, log: this.log });
    if (!this.config.apiKey) this.log("DASHBOARD_API_KEY is not set: the dashboard will refuse every event");
    // Whatever is still in memory when the process ends goes to disk, to be sent by the next client.
    this.onExit = () => this.spoolEverythingInMemory();
    process.on("exit", this.onExit);
    this.adoptOrphans();
    this.orphanTimer = setInterval(() => this.adoptOrphans(), this.config.orphanScanMs ?? DEFAULTS.orphanScanMs);
    this.orphanTimer.unref?.();
  }

  /**
   * Queue one event and return its id. `options`: `agentId` (default: the configured DASHBOARD_AGENT_ID),
   * `id`, `timestamp` (ISO 8601 or epoch ms; default now) and `coalesceKey`: an event with the same key
   * still waiting in memory is replaced by this one (a newer snapshot of the same thing).
   */
  send(type, data, options = {}) {
    const event = { id: options.id ?? newEventId(), type, timestamp: options.timestamp ?? new Date().toISOString(),
      data };
    const agentId = options.agentId ?? this.config.agentId;
    if (agentId) event.agent_id = agentId;
    this.enqueue(event, options.coalesceKey);
    return event.id;
  }

  enqueue(event, key) {
    if (this.stopping) { // closed: the next client sends it
      this.spoolEvents([event]);
      return;
    }
    const waiting = key === undefined ? undefined : this.byKey.get(key);
    if (waiting) {
      waiting.event = event;
      return;
    }
    const entry = { event, key };
    this.queue.push(entry);
    if (key !== undefined) this.byKey.set(key, entry);
    if (this.queue.length >= this.config.batchMax) this.kick();
    else if (!this.windowTimer) {
      this.windowTimer = setTimeout(() => this.kick(), this.config.batchMs);
      this.windowTimer.unref?.();
    }
  }

  /** Send what is waiting now; resolves true once nothing is left, false if `timeoutMs` passes first. */
  async flush(timeoutMs = Infinity) {
    if (!this.queue.length && !this.spool.pending() && !this.pumping) return true;
    const idle = new Promise((resolve) => this.idleWaiters.push(resolve));
    this.kick();
    if (timeoutMs === Infinity) return idle;
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Try for up to `timeoutMs` to deliver everything, then spool whatever is left; resolves true if all was sent. */
  async close(timeoutMs = DEFAULTS.closeTimeoutMs) {
    const delivered = await this.flush(timeoutMs);
    this.stopping = true;
    clearTimeout(this.windowTimer);
    clearInterval(this.orphanTimer);
    this.abort.abort(); // a request under way fails now, a backoff ends; their events go to the spool
    await this.pumping;
    this.spoolEverythingInMemory();
    this.spool.release();
    process.off("exit", this.onExit);
    return delivered;
  }

  /**
   * An authenticated request to the dashboard with the same backoff as events: network errors, 408, 429
   * and 5xx are retried up to `attempts` times (default: until `signal` aborts); another 4xx throws a
   * DashboardError. Resolves with the parsed JSON answer (null for an empty one). For routes agents poll,
   * e.g. `await client.requestJson("GET", "/api/agent/a1/inbox?wait=30", {timeoutMs: 40_000})`.
   */
  async requestJson(method, path, { body, signal, attempts = Infinity, timeoutMs } = {}) {
    for (let attempt = 0; ; attempt++) {
      const result = await this.fetchOnce(method, path, body, { signal, timeoutMs });
      if (result.status >= 200 && result.status < 300) return result.body;
      if (result.status && !isRetryable(result.status)) {
        throw new DashboardError(`${method} ${path} answered ${result.status}: ${errorMessage(result)}`,
          result.status, result.body);
      }
      if (attempt + 1 >= attempts || signal?.aborted) {
        throw new Error(`${method} ${path}: gave up after ${attempt + 1} attempts; last: ${describe(result)}`);
      }
      await this.sleep(backoffDelay(attempt, this.config, result.retryAfterMs), signal, { keepAlive: true });
    }
  }

  getJson(path, options = {}) {
    return this.requestJson("GET", path, options);
  }

  // Delivery ------------------------------------------------------------------------------------------------

  kick() {
    clearTimeout(this.windowTimer);
    this.windowTimer = null;
    if (this.stopping) return;
    if (this.pumping) {
      // While the dashboard is behind, a batch's worth of waiting events (coalesced) joins the spool's
      // tail now rather than after the backoff: from here on it survives the process being killed.
      if (this.spool.pending()) this.spoolEvents(this.takeQueued(Infinity));
      return;
    }
    this.pumping = this.pump().then(() => {
      this.pumping = null;
      const left = this.queue.length > 0 || this.spool.pending();
      if (left && !this.stopping) this.kick();
      else for (const resolve of this.idleWaiters.splice(0)) resolve(!left);
    }, (error) => {
      // A bug or a failing disk must never take the agent down with it: say so, and try again later.
      this.pumping = null;
      this.failures += 1;
      this.log(`delivery stopped by an error, retrying: ${error?.stack ?? error}`);
      if (!this.stopping) {
        this.windowTimer = setTimeout(() => this.kick(), backoffDelay(this.failures, this.config) || 1);
        this.windowTimer.unref?.();
      } else for (const resolve of this.idleWaiters.splice(0)) resolve(false);
    });
  }

  /** The one loop that sends: the spool first (it is older), then the queue, one batch at a time. */
  async pump() {
    while (!this.stopping) {
      let events, fromSpool;
      if (this.spool.pending()) {
        this.spoolEvents(this.takeQueued(Infinity)); // queued events go behind the spooled ones
        fromSpool = this.spool.head(this.config.batchMax);
        if (!fromSpool) continue; // the head segment held nothing readable and was removed
        events = fromSpool.events;
      } else if (this.queue.length) {
        events = this.inflight = this.takeQueued(this.config.batchMax);
      } else return;

      const outcome = await this.deliver(events);
      this.inflight = null;
      if (outcome.retry) {
        if (!fromSpool) this.spoolEvents([...events, ...this.takeQueued(Infinity)]);
        this.failures += 1;
        if (this.failures === 1) this.log(`dashboard unreachable (${outcome.reason}); spooling to ${this.spool.dir}`);
        if (this.stopping) return;
        await this.sleep(backoffDelay(this.failures - 1, this.config, outcome.retryAfterMs), this.abort.signal);
        continue;
      }
      if (this.failures) this.log(`dashboard reachable again after ${this.failures} failed attempts`);
      this.failures = 0;
      if (fromSpool) this.spool.consume(fromSpool);
    }
  }

  /**
   * Post a batch until it is acknowledged or refused for good. Returns {retry: false} when done (delivered,
   * or dropped as refused) and {retry: true, retryAfterMs, reason} when it should be tried again later.
   */
  async deliver(events) {
    let batch = events;
    while (batch.length) {
      const result = await this.fetchOnce("POST", "/api/events", { events: batch }, {});
      this.stats.posts += 1;
      if (result.status >= 200 && result.status < 300) {
        this.stats.accepted += result.body?.accepted ?? 0;
        this.stats.duplicates += result.body?.duplicates ?? 0;
        return { retry: false };
      }
      if (!result.status || isRetryable(result.status)) {
        return { retry: true, retryAfterMs: result.retryAfterMs, reason: describe(result) };
      }
      if (result.status === 413 && batch.length > 1) { // too big together: each half may pass alone
        const half = Math.ceil(batch.length / 2);
        const first = await this.deliver(batch.slice(0, half));
        return first.retry ? first : this.deliver(batch.slice(half));
      }
      const culprit = result.status === 422 ? batchIndex(result.body) : null;
      const refused = culprit !== null && culprit < batch.length && batch.length > 1 ? [batch[culprit]] : batch;
      this.stats.dropped += refused.length;
      this.log(`dropped ${refused.length} event(s) (${refused.map((e) => `${e.type} ${e.id}`).slice(0, 5)
        .join(", ")}): the dashboard answered ${result.status}: ${errorMessage(result)}`);
      if (refused === batch) return { retry: false };
      batch = batch.filter((_, index) => index !== culprit); // a batch is all-or-nothing: send the others again
    }
    return { retry: false };
  }

  /** One request. Resolves {status, body, retryAfterMs} or, when no answer came, {status: 0, error}. */
  async fetchOnce(method, path, body, { signal, timeoutMs }) {
    const controller = new AbortController();
    const stop = () => controller.abort();
    const timer = setTimeout(stop, timeoutMs ?? this.config.requestTimeoutMs);
    this.abort.signal.addEventListener("abort", stop);
    signal?.addEventListener("abort", stop);
    try {
      const response = await this.fetch(this.config.url + path, {
        method,
        headers: { Authorization: `Bearer ${this.config.apiKey}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller.signal,
      });
      const text = await response.text();
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null; // a proxy's HTML error page: the status says enough
      }
      return { status: response.status, body: parsed, retryAfterMs: retryAfterMs(response.headers.get("retry-after")) };
    } catch (error) {
      return { status: 0, error: error?.cause?.code ?? error?.name ?? String(error) };
    } finally {
      clearTimeout(timer);
      this.abort.signal.removeEventListener("abort", stop);
      signal?.removeEventListener("abort", stop);
    }
  }

  /**
   * Wait `ms`, or less if `signal` aborts. The delivery's waits do not keep the process alive (at its
   * exit, what is waiting is spooled); a caller awaiting an answer does.
   */
  sleep(ms, signal, { keepAlive = false } = {}) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      if (!keepAlive) timer.unref?.();
      if (signal?.aborted) done();
      else signal?.addEventListener("abort", done);
    });
  }

  // The spool, from the client's side ----------------------------------------------------------------------

  takeQueued(count) {
    const entries = this.queue.splice(0, count);
    for (const entry of entries) if (entry.key !== undefined) this.byKey.delete(entry.key);
    return entries.map((entry) => entry.event);
  }

  spoolEvents(events) {
    if (!events.length) return;
    if (this.spool.append(events)) this.stats.spooled += events.length;
    else this.stats.dropped += events.length;
  }

  spoolEverythingInMemory() {
    // Synchronous on purpose: it also runs from process.on("exit"), where nothing asynchronous finishes.
    const inflight = this.inflight ?? []; // may have arrived; if so the resend is a duplicate
    this.inflight = null;
    this.spoolEvents([...inflight, ...this.takeQueued(Infinity)]);
  }

  adoptOrphans() {
    try {
      if (this.spool.adoptOrphans() && !this.stopping) this.kick();
    } catch (error) {
      this.log(`could not look for spool segments left by other processes: ${error?.message ?? error}`);
    }
  }
}

/**
 * Segment files of JSON lines, `<start ms>-<pid>-<seq>.jsonl`, in `dir`. A process appends only to its
 * own segments and reads them oldest first; `<segment>.offset` records how far it has delivered (a crash
 * between a delivery and that record only resends events, which the dashboard acknowledges as
 * duplicates). A segment whose writer has exited is adopted by the next client that sees it, through an
 * exclusive `<segment>.claim` file. All operations are synchronous: each is small, and none can then be
 * cut in half by the process exiting.
 */
export class Spool {
  constructor(dir, { maxBytes = DEFAULTS.spoolMaxBytes, log = () => {}, pid = process.pid, now = Date.now() } = {}) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.segmentBytes = Math.min(4 * MIB, Math.max(4096, Math.floor(maxBytes / 8)));
    this.dropped = 0; // events removed to keep under maxBytes
    this.log = log;
    this.pid = pid;
    this.prefix = `${String(now).padStart(13, "0")}-${pid}-`;
    this.segments = []; // the segments this process owns (its own and adopted ones), oldest first
    this.offsets = new Map(); // segment -> bytes already delivered
    this.current = null; // the own segment appends go to
    this.unwritable = false;
  }

  pending() {
    return this.segments.length > 0;
  }

  path(name) {
    return join(this.dir, name);
  }

  /** Append events as lines; false (after logging) when the disk refuses, in which case they are lost. */
  append(events) {
    if (!events.length) return true;
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      let room = this.current ? this.segmentBytes - size(this.path(this.current)) : 0;
      let lines = [];
      const write = () => {
        if (!lines.length) return;
        this.current ??= `${this.prefix}${String(segmentNumbers.next++ % 1e6).padStart(6, "0")}.jsonl`;
        appendText(this.path(this.current), lines.join(""));
        lines = [];
        if (!this.segments.includes(this.current)) {
          this.segments.push(this.current);
          liveSegments.add(this.path(this.current));
        }
      };
      for (const event of events) {
        if (room <= 0) { // segments stay small, so the size limit can drop the oldest ones whole
          write();
          this.current = null;
          room = this.segmentBytes;
        }
        const line = `${JSON.stringify(event)}\n`;
        lines.push(line);
        room -= Buffer.byteLength(line);
      }
      write();
      this.unwritable = false;
    } catch (error) {
      if (!this.unwritable) this.log(`cannot write the spool in ${this.dir} (${error.code ?? error}): events are lost`);
      this.unwritable = true;
      return false;
    }
    this.enforceLimit();
    return true;
  }

  /** The oldest undelivered events, up to `max`: {segment, events, bytes}, or null if none could be read. */
  head(max) {
    while (this.segments.length) {
      const segment = this.segments[0];
      const offset = this.offsets.get(segment) ?? 0;
      let text, more;
      // Read a chunk, and a larger one only if it does not hold `max` whole lines and there is more.
      for (let limit = 256 * 1024; ; limit *= 4) {
        ({ text, more } = readFrom(this.path(segment), offset, limit));
        if (!more || countLines(text) >= max) break;
      }
      if (!text) { // nothing left in it (or it is gone)
        this.remove(segment);
        continue;
      }
      const events = [];
      let bytes = 0;
      let start = 0;
      while (events.length < max) {
        const end = text.indexOf("\n", start);
        if (end < 0) break;
        const line = text.slice(start, end);
        bytes += Buffer.byteLength(line) + 1;
        start = end + 1;
        try {
          events.push(JSON.parse(line));
        } catch {
          this.log(`skipped an unreadable line in the spool segment ${segment}`);
        }
      }
      if (events.length) return { segment, events, bytes };
      if (bytes) { // only unreadable lines so far: step over them
        this.consume({ segment, bytes });
        continue;
      }
      // A line without its newline: the writer died mid-write (appends are whole lines otherwise).
      this.log(`dropped a torn last line in the spool segment ${segment}`);
      this.remove(segment);
    }
    return null;
  }

  /** Mark a batch from `head` delivered: advance the segment's offset, or remove it once it is all sent. */
  consume({ segment, bytes }) {
    const offset = (this.offsets.get(segment) ?? 0) + bytes;
    if (offset >= size(this.path(segment))) {
      this.remove(segment);
      return;
    }
    this.offsets.set(segment, offset);
    const record = this.path(`${segment}.offset`);
    writeFileSync(`${record}.tmp`, String(offset));
    renameSync(`${record}.tmp`, record); // atomic: a crash leaves the old offset or the new one
  }

  remove(segment) {
    for (const suffix of ["", ".offset", ".claim"]) {
      try {
        unlinkSync(this.path(segment + suffix));
      } catch {
        // already gone
      }
    }
    liveSegments.delete(this.path(segment));
    this.segments = this.segments.filter((name) => name !== segment);
    this.offsets.delete(segment);
    if (segment === this.current) this.current = null;
  }

  /** Over the size limit, the oldest segments go first (newer state is what a dashboard shows). */
  enforceLimit() {
    let total = this.segments.reduce((sum, name) => sum + size(this.path(name)) - (this.offsets.get(name) ?? 0), 0);
    while (total > this.maxBytes && this.segments.length > 1) {
      const oldest = this.segments[0];
      const { text } = readFrom(this.path(oldest), this.offsets.get(oldest) ?? 0);
      total -= Buffer.byteLength(text);
      this.dropped += countLines(text);
      this.log(`spool over ${this.maxBytes} bytes: dropped ${countLines(text)} of the oldest events`);
      this.remove(oldest);
    }
  }

  /** This process's client is closing: a later client in the same process may adopt these segments. */
  release() {
    for (const name of this.segments) liveSegments.delete(this.path(name));
  }

  /** Take over the segments of processes that have exited; returns how many were adopted. */
  adoptOrphans() {
    let names;
    try {
      names = readdirSync(this.dir);
    } catch {
      return 0; // no spool yet
    }
    let adopted = 0;
    for (const name of names.filter((n) => SEGMENT.test(n)).sort()) {
      if (this.segments.includes(name) || liveSegments.has(this.path(name)) || !this.claim(name)) continue;
      this.segments.push(name);
      liveSegments.add(this.path(name));
      const offset = Number(readOr(this.path(`${name}.offset`), "0"));
      if (offset > 0) this.offsets.set(name, offset);
      adopted += 1;
    }
    if (adopted) {
      this.segments.sort(); // by the writer's start time: older processes' events first
      this.log(`adopted ${adopted} spool segment(s) left by exited processes`);
    }
    return adopted;
  }

  claim(name) {
    const claimPath = this.path(`${name}.claim`);
    const writer = Number(SEGMENT.exec(name)[2]);
    // The same pid as ours but not our segment: an earlier process that had our pid.
    if (writer !== this.pid && isAlive(writer) && !existsFile(claimPath)) return false;
    for (let tries = 0; tries < 2; tries++) {
      try {
        writeFileSync(claimPath, String(this.pid), { flag: "wx" });
        return existsFile(this.path(name)); // the owner may have finished it meanwhile
      } catch (error) {
        if (error.code !== "EEXIST") return false;
        const holder = Number(readOr(claimPath, "0"));
        if (holder === this.pid || isAlive(holder)) return false;
        try {
          unlinkSync(claimPath); // the claimant has exited too
        } catch {
          return false;
        }
      }
    }
    return false;
  }
}

const SEGMENT = /^(\d{13})-(\d+)-(\d{6})\.jsonl$/;

// Segments owned by a live client in this process, even if this module was loaded twice (the plugin
// installed both globally and in a project): another client here must not adopt them.
const liveSegments = (globalThis[Symbol.for("opencode-dashboard.liveSegments")] ??= new Set());
// Segment numbers are unique in the process, so two clients started in the same millisecond never share one.
const segmentNumbers = (globalThis[Symbol.for("opencode-dashboard.segmentNumbers")] ??= { next: 0 });

function isAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM"; // it exists, under another user
  }
}

function appendText(path, text) {
  const fd = openSync(path, "a", 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}

function size(path) {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function existsFile(path) {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readOr(path, fallback) {
  try {
    return readFileSync(path, "utf8").trim() || fallback;
  } catch {
    return fallback;
  }
}

function countLines(text) {
  let lines = 0;
  for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) lines++;
  return lines;
}

/** Up to `limit` bytes of the file from `offset` as text, and whether there is more after them. */
function readFrom(path, offset, limit = Infinity) {
  let fd;
  try {
    fd = openSync(path, "r");
  } catch {
    return { text: "", more: false };
  }
  try {
    const remaining = Math.max(0, fstatSync(fd).size - offset);
    const length = Math.min(remaining, limit);
    const buffer = Buffer.alloc(length);
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, offset + read);
      if (n === 0) break;
      read += n;
    }
    return { text: buffer.subarray(0, read).toString("utf8"), more: read < remaining };
  } finally {
    closeSync(fd);
  }
}

function batchIndex(body) {
  const match = /^events\[(\d+)\]/.exec(body?.error?.field ?? "");
  return match ? Number(match[1]) : null;
}

function errorMessage(result) {
  return result.body?.error?.message ?? "no explanation";
}

function describe(result) {
  return result.status ? `HTTP ${result.status}` : `no answer: ${result.error}`;
}

function withoutUndefined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined));
}
