/**
 * Delivers events to an OpenCode Dashboard's `POST /api/events` (the ingest contract, docs/events.md):
 * batched, retried with exponential backoff and jitter, and spooled to disk while the dashboard is down.
 *
 * A plain ES module with no dependencies, for Node >= 20 and Bun (which runs opencode's plugins). The
 * opencode plugin (dashboard-hook.js) is a thin adapter over `DashboardClient`; scripts can use it too.
 * docs/hook.md says all of this for a user; in short:
 * - Every event gets its id once, when it is sent to the client; a retry resends the same id, and the
 *   dashboard acknowledges a repeated id as a duplicate instead of applying it twice.
 * - Order is kept per session: a newer snapshot replaces a waiting one only when nothing of its session
 *   came in between.
 * - A dashboard that is down or busy (no answer, 408, 429, 502-504, anything with Retry-After) gets the
 *   same events again, in order, after a backoff; meanwhile they wait in the spool.
 * - A batch answering another 5xx is split until the event at fault is found; that event is tried alone
 *   a few times and then, once the dashboard has accepted the events after it, set aside in the
 *   dead-letter file. A 4xx is final for the events it names: they go to the dead-letter file too.
 * - Strings over `maxStringBytes` are cut before anything is queued, their original sizes kept in the
 *   event's `truncated`.
 * - The spool outlives the process: a later client with the same spool directory adopts the segments of
 *   processes that are gone, and drains them first.
 */

import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync,
  unlinkSync, writeFileSync, writeSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

const KIB = 1024;
const MIB = 1024 * KIB;

export const DEFAULTS = Object.freeze({
  url: "http://127.0.0.1:3000",
  batchMs: 200, // how long the first event of a batch waits for company
  batchMax: 1000, // events per request: the most the dashboard takes in one
  batchMaxBytes: 1 * MIB, // and at most this much JSON (the dashboard's own limit is 8 MiB by default)
  retryBaseMs: 500,
  retryMaxMs: 30_000,
  requestTimeoutMs: 10_000,
  spoolMaxBytes: 64 * MIB,
  closeTimeoutMs: 2_000,
  orphanScanMs: 30_000, // how often to look for spool segments left by processes that are gone
  deadLetterTries: 5, // times one event answers a 5xx on its own before it may be set aside
  deadLetterMaxBytes: 16 * MIB, // past this the dead-letter file becomes `<file>.1` and a new one starts
  maxStringBytes: 32 * KIB, // longer strings in an event's data are cut to this (UTF-8 bytes)
  maxEventBytes: 256 * KIB, // an event still larger after that has its strings cut shorter, down to 1 KiB
});

/** A batch's body is `{"events":[` + each event's JSON, a comma between them + `]}`: 12 bytes and one an event. */
const ENVELOPE_BYTES = '{"events":[]}'.length - 1;

const JSON_TEXT = Symbol("json");

/** The dead-letter file's name in the spool directory, unless DASHBOARD_DEAD_LETTER_FILE says otherwise. */
export const DEAD_LETTER_NAME = "dead-letters.jsonl";

/** The client's settings from the environment (see docs/hook.md, "Settings"). */
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
    batchMaxBytes: Math.max(KIB, number("DASHBOARD_BATCH_MAX_BYTES", DEFAULTS.batchMaxBytes)),
    retryBaseMs: number("DASHBOARD_RETRY_BASE_MS", DEFAULTS.retryBaseMs),
    retryMaxMs: number("DASHBOARD_RETRY_MAX_MS", DEFAULTS.retryMaxMs),
    requestTimeoutMs: number("DASHBOARD_TIMEOUT_MS", DEFAULTS.requestTimeoutMs),
    spoolMaxBytes: number("DASHBOARD_SPOOL_MAX_BYTES", DEFAULTS.spoolMaxBytes),
    deadLetterFile: env.DASHBOARD_DEAD_LETTER_FILE || undefined, // default: in the spool directory
    deadLetterTries: Math.max(1, number("DASHBOARD_DEAD_LETTER_TRIES", DEFAULTS.deadLetterTries)),
    maxStringBytes: Math.max(KIB, number("DASHBOARD_MAX_STRING_BYTES", DEFAULTS.maxStringBytes)),
    maxEventBytes: Math.max(KIB, number("DASHBOARD_MAX_EVENT_BYTES", DEFAULTS.maxEventBytes)),
  };
}

export function defaultSpoolDir(env = process.env) {
  const state = env.XDG_STATE_HOME || join(env.HOME || homedir(), ".local", "state");
  return join(state, "opencode-dashboard", "spool");
}

// An id begins with the time it was made, in milliseconds (48 bits, as a UUIDv7 does), then 80 random bits,
// drawn from a pool filled 256 ids at a time (one call to the system's random source instead of one each).
// Beginning with the time keeps the dashboard's duplicate check cheap: its index on event ids takes a batch's
// new ids at one end instead of all over (with 300 000 events stored, a 1 000-event batch held the dashboard's
// write lock 31 ms with these ids, 59 ms with random ones; docs/benchmarks.md, "Event ids").
const ID_TIME_HEX = 12;
const ID_RANDOM_BYTES = 10;
const idPool = Buffer.alloc(ID_RANDOM_BYTES * 256);
let idPoolAt = idPool.length;

export function newEventId(now = Date.now()) {
  if (idPoolAt === idPool.length) {
    randomFillSync(idPool);
    idPoolAt = 0;
  }
  idPoolAt += ID_RANDOM_BYTES;
  const time = Math.max(0, Math.floor(now)).toString(16).padStart(ID_TIME_HEX, "0").slice(-ID_TIME_HEX);
  return `evt_${time}${idPool.toString("hex", idPoolAt - ID_RANDOM_BYTES, idPoolAt)}`;
}

let stampMs = -1;
let stamp = "";

/** Now in ISO 8601, made once a millisecond: events come many to a millisecond when opencode streams. */
function isoNow() {
  const ms = Date.now();
  if (ms !== stampMs) {
    stampMs = ms;
    stamp = new Date(ms).toISOString();
  }
  return stamp;
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

/**
 * What an answer to a batch of events means for them:
 * - "accepted": a 2xx;
 * - "busy": the dashboard is down or busy, whatever the events hold — no answer, 408, 429, 502, 503, 504,
 *   or any answer with Retry-After (a locked database's 503): the same events go again, in order, later;
 * - "broken": another 5xx — the dashboard failed on something in these events: they are split to find it;
 * - "refused": a 4xx: final for the events it names.
 */
export function verdictOf(result) {
  const { status } = result;
  if (status >= 200 && status < 300) return "accepted";
  if (!status || status === 408 || status === 429 || (status >= 502 && status <= 504)) return "busy";
  if (status >= 500) return result.retryAfterMs == null ? "broken" : "busy";
  return "refused";
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

/**
 * The opencode session an event belongs to, from the shapes opencode's events have (v1 and v2: a
 * `sessionID`, a message's or a part's `sessionID`, a session's own `info.id`); undefined for an event
 * of no session (a file edit, a task, an agent), which then keeps its place relative to every session.
 */
export function sessionOf(type, data) {
  const session = data?.sessionID ?? data?.part?.sessionID ?? data?.info?.sessionID
    ?? (type.startsWith("session.") ? data?.info?.id : undefined);
  return typeof session === "string" ? session : undefined;
}

/**
 * `data` with every string longer than `maxStringBytes` (UTF-8) cut to that size, and the original sizes
 * by path as the dashboard names fields (`{"data.part.state.output": 2097152}`; undefined when nothing
 * was cut). An event still over `maxEventBytes` (many long strings) has them cut shorter, halving the
 * limit down to 1 KiB; past that it goes as it is. `data` itself is never modified.
 */
export function cutToSize(data, { maxStringBytes, maxEventBytes }) {
  // Nearly every event is far below both limits: a walk that neither copies nor serialises says so.
  if (jsonBytesAtMost(data, Math.floor(maxStringBytes / 3), maxEventBytes) >= 0) return { data, truncated: undefined };
  for (let limit = maxStringBytes; ; limit = Math.max(KIB, Math.floor(limit / 2))) {
    const truncated = {};
    const cut = cutStrings(data, limit, "data", truncated);
    if (limit === KIB || Buffer.byteLength(JSON.stringify(cut)) <= maxEventBytes) {
      return { data: cut, truncated: Object.keys(truncated).length ? truncated : undefined };
    }
  }
}

/**
 * An upper bound on the bytes of `value`'s JSON, or -1 once it is over `budget` or a string is longer than
 * `maxChars` UTF-16 units (either may need cutting). A unit takes at most 6 bytes in JSON (`\u001f`), a
 * number at most 24. Anything else (a `toJSON`, a BigInt) answers -1 too: the full cut decides.
 */
function jsonBytesAtMost(value, maxChars, budget) {
  switch (typeof value) {
    case "string":
      return value.length > maxChars ? -1 : 2 + 6 * value.length;
    case "number":
      return 24;
    case "boolean":
    case "undefined":
      return 5;
    case "object":
      break;
    default:
      return -1;
  }
  if (value === null) return 4;
  if (typeof value.toJSON === "function") return -1;
  let bytes = 2;
  if (Array.isArray(value)) {
    for (const item of value) {
      const itemBytes = jsonBytesAtMost(item, maxChars, budget - bytes);
      if (itemBytes < 0) return -1;
      bytes += itemBytes + 1;
      if (bytes > budget) return -1;
    }
    return bytes;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const itemBytes = jsonBytesAtMost(value[key], maxChars, budget - bytes);
    if (itemBytes < 0) return -1;
    bytes += itemBytes + 4 + 6 * key.length;
    if (bytes > budget) return -1;
  }
  return bytes;
}

function cutStrings(value, limit, path, truncated) {
  if (typeof value === "string") {
    if (value.length * 3 <= limit) return value; // at most 3 bytes a UTF-16 unit: cannot be over
    const bytes = Buffer.byteLength(value);
    if (bytes <= limit) return value;
    truncated[path] = bytes;
    return cutUtf8(value, limit, bytes);
  }
  if (!value || typeof value !== "object") return value;
  let copy = null; // made only once something inside is cut
  const entries = Array.isArray(value) ? value.map((item, n) => [n, item, `${path}[${n}]`])
    : Object.entries(value).map(([key, item]) => [key, item, `${path}.${key}`]);
  for (const [key, item, where] of entries) {
    const cut = cutStrings(item, limit, where, truncated);
    if (cut === item) continue;
    copy ??= Array.isArray(value) ? [...value] : { ...value };
    copy[key] = cut;
  }
  return copy ?? value;
}

/**
 * At most `limit` bytes of `text`, never half a character, ending with a note of the original size (as
 * the dashboard's own cut says it, in characters, for text other clients send it whole).
 */
function cutUtf8(text, limit, bytes) {
  const note = `\n… [cut by the hook: ${bytes} bytes in all]`;
  const buffer = Buffer.from(text);
  let end = Math.max(0, limit - Buffer.byteLength(note));
  while (end > 0 && (buffer[end] & 0xc0) === 0x80) end--; // a UTF-8 continuation byte: step back
  return buffer.subarray(0, end).toString("utf8") + note;
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
    this.config.deadLetterFile ??= join(this.config.spoolDir, DEAD_LETTER_NAME);
    this.log = log ?? ((message) => console.error(`[dashboard-hook] ${message}`));
    this.fetch = fetch ?? globalThis.fetch.bind(globalThis);
    this.stats = { posts: 0, accepted: 0, duplicates: 0, dropped: 0, deadLettered: 0, spooled: 0, cut: 0 };
    this.queue = []; // entries {event, key, session} not yet sent, oldest first
    this.inflight = null; // events of the batch under way and not settled yet, when it came from the queue
    this.failures = 0; // consecutive failed deliveries: the backoff's exponent
    this.brokenTries = new Map(); // event id -> times it answered a 5xx on its own
    this.settled = new Set(); // ids settled behind one that is not, in the spool's head batch
    this.stopping = false;
    this.pumping = null;
    this.windowTimer = null;
    this.idleWaiters = [];
    this.abort = new AbortController();
    this.spool = new Spool(this.config.spoolDir, { maxBytes: this.config.spoolMaxBytes, log: this.log });
    this.deadLetters = new DeadLetters(this.config.deadLetterFile,
      { maxBytes: this.config.deadLetterMaxBytes ?? DEFAULTS.deadLetterMaxBytes, log: this.log });
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
   * `id`, `timestamp` (ISO 8601 or epoch ms; default now), `session` (default: `sessionOf(type, data)`)
   * and `coalesceKey`: a newer snapshot of the same thing replaces the one still waiting with this key,
   * if that is the latest waiting event of its session (nothing of the session came in between).
   */
  send(type, data, options = {}) {
    const cut = cutToSize(data, this.config);
    const event = { id: options.id ?? newEventId(), type, timestamp: options.timestamp ?? isoNow(),
      data: cut.data };
    const agentId = options.agentId ?? this.config.agentId;
    if (agentId) event.agent_id = agentId;
    if (cut.truncated) {
      event.truncated = cut.truncated;
      this.stats.cut += 1;
    }
    this.enqueue(event, options.coalesceKey, options.session ?? sessionOf(type, data));
    return event.id;
  }

  enqueue(event, key, session) {
    if (this.stopping) { // closed: the next client sends it
      this.spoolEvents([event]);
      return;
    }
    const latest = key === undefined ? undefined : this.latestWaiting(session);
    if (latest && latest.key === key && latest.session === session) {
      latest.event = event; // in its place: nothing of the session is between the two
      return;
    }
    this.queue.push({ event, key, session });
    if (this.queue.length >= this.config.batchMax) this.kick();
    else if (!this.windowTimer) {
      this.windowTimer = setTimeout(() => this.kick(), this.config.batchMs);
      this.windowTimer.unref?.();
    }
  }

  /**
   * The newest waiting entry an event of `session` must stay behind: the session's latest, or a later
   * one of no session (it keeps its place relative to every session). Without a session, the newest.
   */
  latestWaiting(session) {
    for (let at = this.queue.length - 1; at >= 0; at--) {
      const entry = this.queue[at];
      if (session === undefined || entry.session === undefined || entry.session === session) return entry;
    }
    return undefined;
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
        fromSpool = this.spool.head(this.config.batchMax, this.config.batchMaxBytes - ENVELOPE_BYTES);
        if (!fromSpool) continue; // the head segment held nothing readable and was removed
        events = fromSpool.events.filter((event) => !this.settled.has(event.id));
      } else if (this.queue.length) {
        events = this.inflight = this.takeBatch();
      } else return;

      const outcome = await this.deliver(events);
      this.inflight = null;
      if (fromSpool) this.consumeSettled(fromSpool, outcome.left);
      if (outcome.retry) {
        if (!fromSpool) this.spoolEvents([...outcome.left, ...this.takeQueued(Infinity)]);
        this.failures += 1;
        if (this.failures === 1) {
          this.log(`dashboard not taking events (${outcome.reason}); spooling to ${this.spool.dir}`);
        }
        if (this.stopping) return;
        await this.sleep(backoffDelay(this.failures - 1, this.config, outcome.retryAfterMs), this.abort.signal);
        continue;
      }
      if (this.failures) this.log(`dashboard reachable again after ${this.failures} failed attempts`);
      this.failures = 0;
    }
  }

  /**
   * Post `events` in order until each is settled: accepted by the dashboard, or set aside in the
   * dead-letter file. Resolves {left, accepted, retry, retryAfterMs, reason}: `left` the events still to
   * send, in order (with `retry`, the dashboard is down or busy and they wait for the next attempt);
   * `accepted` whether the dashboard took any. A probe (see `settleSuspect`) stops at the first
   * acceptance, and does not wait for a suspect of its own.
   */
  async deliver(events, { probe = false } = {}) {
    const left = [...events];
    let size = left.length; // how many of `left` go in the next request
    let accepted = false;
    while (left.length) {
      const part = left.slice(0, size);
      const result = await this.post(part);
      const verdict = verdictOf(result);
      if (verdict === "accepted") {
        left.splice(0, part.length);
        this.settle(part);
        size = Math.min(left.length, size * 2); // after a split, back to whole batches in a few steps
        accepted = true;
        if (probe) break;
      } else if (verdict === "busy") {
        return { left, accepted, retry: true, retryAfterMs: result.retryAfterMs, reason: describe(result) };
      } else if (part.length > 1 && (verdict === "broken" || result.status === 413)) {
        size = Math.ceil(part.length / 2); // the first half goes first: order is kept
      } else if (verdict === "refused") {
        const culprit = result.status === 422 && part.length > 1 ? batchIndex(result.body) : null;
        const named = culprit !== null && culprit < part.length;
        const refused = named ? left.splice(culprit, 1) : left.splice(0, part.length);
        this.setAside(refused, result); // a batch is all-or-nothing: the others go again at once
      } else {
        const settled = await this.settleSuspect(left, result, { probe });
        if (settled.retry) return { ...settled, accepted: accepted || settled.accepted };
        if (settled.accepted && probe) return { left: settled.left, accepted: true };
        accepted ||= settled.accepted;
        left.splice(0, left.length, ...settled.left);
        size = settled.accepted ? left.length : 1; // the suspect's next try is alone again
      }
    }
    return { left, accepted };
  }

  /**
   * `left[0]` has just answered a 5xx on its own (`result`). It is tried alone again after a backoff, up
   * to `deadLetterTries` times in all. Then it is the event's fault only if the dashboard takes others:
   * the events after it are sent, and if any is accepted the suspect is set aside in the dead-letter
   * file. If none is, the dashboard fails on everything — an outage: all of them wait, in order. Resolves
   * like `deliver`, with `left` from the suspect (while it still waits) or from after it.
   */
  async settleSuspect(left, result, { probe }) {
    const [suspect, ...after] = left;
    const tries = (this.brokenTries.get(suspect.id) ?? 0) + 1;
    this.brokenTries.set(suspect.id, tries);
    const reason = `${describe(result)} to ${suspect.type} ${suspect.id}`;
    const waiting = { left, accepted: false, retry: true, reason };
    if (tries < this.config.deadLetterTries) {
      if (probe) return waiting; // no evidence yet; the suspect of the probe gets its own tries in turn
      await this.sleep(backoffDelay(tries - 1, this.config), this.abort.signal);
      return this.stopping ? waiting : { left, accepted: false };
    }
    const others = await this.deliver(after, { probe: true });
    if (!others.accepted) {
      return { ...waiting, left: [suspect, ...others.left], retryAfterMs: others.retryAfterMs,
        reason: `${waiting.reason}, and no event after it was accepted` };
    }
    this.setAside([suspect], result, { tries });
    return { left: others.left, accepted: true };
  }

  /** Done with these events: nothing to try again, nothing to spool if the process exits now. */
  settle(events) {
    for (const event of events) this.brokenTries.delete(event.id);
    if (!this.inflight) return;
    const settled = new Set(events);
    this.inflight = this.inflight.filter((event) => !settled.has(event));
  }

  /** One request with a batch; counts what the dashboard says it took. */
  async post(events) {
    const body = `{"events":[${events.map((event) => this.jsonOf(event)).join(",")}]}`;
    const result = await this.fetchOnce("POST", "/api/events", body, {});
    this.stats.posts += 1;
    if (verdictOf(result) === "accepted") {
      this.stats.accepted += result.body?.accepted ?? 0;
      this.stats.duplicates += result.body?.duplicates ?? 0;
    }
    return result;
  }

  /**
   * Events the dashboard will not take go to the dead-letter file with its answer, and are logged once:
   * refused (a 4xx) or, after `tries`, failing it on their own (a 5xx).
   */
  setAside(events, result, { tries } = {}) {
    this.settle(events);
    if (tries) this.stats.deadLettered += events.length;
    else this.stats.dropped += events.length;
    const error = { status: result.status, ...(result.body?.error ?? {}), ...(tries ? { tries } : {}) };
    const kept = this.deadLetters.add(events, error);
    const what = tries ? `dead-lettered ${events.length} event(s)` : `dropped ${events.length} event(s)`;
    const answered = tries ? `${result.status} ${tries} times on its own while accepting the events after it`
      : result.status;
    this.log(`${what} (${events.map((e) => `${e.type} ${e.id}`).slice(0, 5).join(", ")}): the dashboard `
      + `answered ${answered}: ${errorMessage(result)}${kept ? `; kept in ${this.deadLetters.path}` : ""}`);
  }

  /** An event's JSON, made once however often it is sent (kept on it under a symbol, which JSON leaves out). */
  jsonOf(event) {
    return (event[JSON_TEXT] ??= JSON.stringify(event));
  }

  /**
   * One request; `body` is a value to send as JSON, or JSON already made. Resolves {status, body,
   * retryAfterMs} or, when no answer came, {status: 0, error}.
   */
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
        body: body === undefined || typeof body === "string" ? body : JSON.stringify(body),
        signal: controller.signal,
      });
      const text = await response.text();
      let parsed = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null; // a proxy's HTML error page: the status says enough
      }
      const retryAfter = response.headers.get("retry-after");
      return { status: response.status, body: parsed,
        retryAfterMs: retryAfter === null ? null : retryAfterMs(retryAfter) }; // null: none given
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
    return this.queue.splice(0, count).map((entry) => entry.event);
  }

  /** The next batch from the queue: up to `batchMax` events and a body of `batchMaxBytes`, at least one. */
  takeBatch() {
    const { batchMax, batchMaxBytes } = this.config;
    let count = 0;
    let bytes = ENVELOPE_BYTES;
    while (count < batchMax && count < this.queue.length) {
      bytes += Buffer.byteLength(this.jsonOf(this.queue[count].event)) + 1;
      if (count > 0 && bytes > batchMaxBytes) break;
      count += 1;
    }
    return this.takeQueued(count);
  }

  /**
   * After a batch from the spool: the settled events at its front are consumed from the segment; those
   * settled behind one still waiting (`left`) are remembered, so that the next read skips them.
   */
  consumeSettled(batch, left) {
    const waiting = new Set(left.map((event) => event.id));
    const front = batch.events.findIndex((event) => waiting.has(event.id));
    const consumed = front < 0 ? batch.events.length : front;
    for (const [at, event] of batch.events.entries()) {
      if (at < consumed) this.settled.delete(event.id);
      else if (!waiting.has(event.id)) this.settled.add(event.id);
    }
    if (consumed === batch.events.length) this.spool.consume(batch);
    else if (consumed) this.spool.consume({ segment: batch.segment, bytes: batch.ends[consumed - 1] });
  }

  spoolEvents(events) {
    if (!events.length) return;
    if (this.spool.append(events)) this.stats.spooled += events.length;
    else this.stats.dropped += events.length;
  }

  spoolEverythingInMemory() {
    // Synchronous on purpose: it also runs from process.on("exit"), where nothing asynchronous finishes.
    const inflight = this.inflight ?? []; // the request under way may arrive; then the resend is a duplicate
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
 * The dead-letter file: one JSON line per event the dashboard will not take,
 * `{"at": ISO 8601, "error": {"status", "code", "message", "field"?, "tries"?}, "event": {...}}`, to read
 * or to send again by hand. Past `maxBytes` it becomes `<path>.1` (replacing an older one) and a new file
 * starts, so it never holds more than twice that.
 */
export class DeadLetters {
  constructor(path, { maxBytes = DEFAULTS.deadLetterMaxBytes, log = () => {} } = {}) {
    this.path = path;
    this.maxBytes = maxBytes;
    this.log = log;
    this.unwritable = false;
  }

  /** Append the events with the dashboard's answer; false (after logging once) when the disk refuses. */
  add(events, error) {
    const at = new Date().toISOString();
    const lines = events.map((event) => `${JSON.stringify({ at, error, event })}\n`).join("");
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
      if (size(this.path) > this.maxBytes) renameSync(this.path, `${this.path}.1`);
      appendText(this.path, lines);
      this.unwritable = false;
      return true;
    } catch (error) {
      if (!this.unwritable) this.log(`cannot write the dead-letter file ${this.path} (${error.code ?? error})`);
      this.unwritable = true;
      return false;
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

  /**
   * The oldest undelivered events, up to `max` and `maxBytes` of lines (the first whatever its size):
   * {segment, events, bytes, ends}, or null if none could be read. `ends[n]` is how many bytes from the offset the first n+1 events take (for `consume`).
   */
  head(max, maxBytes = Infinity) {
    while (this.segments.length) {
      const segment = this.segments[0];
      const offset = this.offsets.get(segment) ?? 0;
      let text, more;
      // Read a chunk, and a larger one only if it holds neither `max` whole lines nor `maxBytes` and a
      // line, and there is more.
      for (let limit = 256 * 1024; ; limit *= 4) {
        ({ text, more } = readFrom(this.path(segment), offset, limit));
        const lines = countLines(text);
        if (!more || lines >= max || (limit >= maxBytes && lines >= 1)) break;
      }
      if (!text) { // nothing left in it (or it is gone)
        this.remove(segment);
        continue;
      }
      const events = [];
      const ends = [];
      let bytes = 0;
      let start = 0;
      while (events.length < max) {
        const end = text.indexOf("\n", start);
        if (end < 0) break;
        const line = text.slice(start, end);
        const lineBytes = Buffer.byteLength(line) + 1;
        if (events.length && bytes + lineBytes > maxBytes) break; // the first event goes whatever its size
        bytes += lineBytes;
        start = end + 1;
        try {
          events.push(JSON.parse(line));
          ends.push(bytes);
        } catch {
          this.log(`skipped an unreadable line in the spool segment ${segment}`);
        }
      }
      if (events.length) return { segment, events, bytes, ends };
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
