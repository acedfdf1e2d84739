// The live feed: one stream on /api/stream, authenticated by the session cookie, read with fetch().
//
// Not EventSource: it hides why a stream was refused. Here a 503 (the server is serving all the
// streams it can) waits as long as its Retry-After says, plus a little so a crowd of tabs does not
// come back at once; a 401 asks onClosed whether the session ended; anything else that is not a
// stream (a proxy's 502, say) waits a growing pause. A stream that ends or breaks reconnects after the
// server's `retry:` hint with Last-Event-ID, and the server resumes from there: nothing is lost.

const FIRST_PAUSE_MS = 1000;
const LONGEST_PAUSE_MS = 30000;

export class LiveFeed {
  constructor({ onChange, onReset, onOpen, onState, onClosed, fetch = (...args) => globalThis.fetch(...args),
    setTimeout = (...args) => globalThis.setTimeout(...args), random = Math.random }) {
    Object.assign(this, { onChange, onReset, onOpen, onState, onClosed, fetch, setTimeout, random });
    this.lastEventId = null;
    this.reconnectMs = 2000; // until the server's `retry:` says otherwise
    this.pauseMs = FIRST_PAUSE_MS;
    this.timer = null;
    this.abort = null;
  }

  start() {
    this.stop();
    this.stopped = false;
    this.setState("connecting");
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort?.abort();
    this.abort = null;
  }

  async connect() {
    const abort = new AbortController();
    this.abort = abort;
    const headers = { Accept: "text/event-stream" };
    if (this.lastEventId) headers["Last-Event-ID"] = this.lastEventId;
    let response;
    try {
      response = await this.fetch("/api/stream", { headers, cache: "no-store", signal: abort.signal });
    } catch {
      return this.streamBroke(abort);
    }
    if (response.ok && (response.headers.get("Content-Type") || "").startsWith("text/event-stream")) {
      return this.read(response, abort);
    }
    response.body?.cancel().catch(() => {});
    if (this.stopped || abort !== this.abort) return;
    this.setState("reconnecting");
    if (response.status === 503 || response.status === 429) {
      // Busy: come back when the server says, give or take a quarter, never sooner.
      const asked = retryAfterMs(response.headers.get("Retry-After"));
      this.later(asked ? asked * (1 + this.random() / 4) : this.nextPause(), () => this.connect());
    } else {
      // Refused for good may mean the session ended: onClosed finds out (and may stop us).
      this.later(this.nextPause(), async () => {
        if (await this.onClosed()) this.connect();
        else if (!this.stopped) this.later(this.nextPause(), () => this.connect());
      });
    }
  }

  async read(response, abort) {
    this.pauseMs = FIRST_PAUSE_MS;
    this.setState("live");
    this.onOpen();
    const parser = new EventStreamParser((frame) => this.dispatch(frame));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
    } catch {
      // broken off: reconnect as if it had ended
    }
    this.streamBroke(abort);
  }

  // The stream ended or the network failed: reconnect after the server's hint, resuming by id.
  streamBroke(abort) {
    if (this.stopped || abort !== this.abort) return;
    this.setState("reconnecting");
    this.later(this.reconnectMs, () => this.connect());
  }

  dispatch({ event, data, id, retry }) {
    if (retry !== undefined) this.reconnectMs = retry;
    if (id !== undefined) this.lastEventId = id || null;
    if (data === undefined) return;
    let change;
    try {
      change = JSON.parse(data);
    } catch {
      return; // not ours to show
    }
    // `reset`: the changes this stream missed are gone, reload. Every other topic goes to the page, whose
    // handlers (state.js) are the one list of what it shows.
    if (event === "reset") this.onReset(change);
    else this.onChange(change);
  }

  later(ms, action) {
    clearTimeout(this.timer);
    this.timer = this.setTimeout(() => {
      if (!this.stopped) action();
    }, ms);
  }

  nextPause() {
    const pause = this.pauseMs;
    this.pauseMs = Math.min(this.pauseMs * 2, LONGEST_PAUSE_MS);
    return pause;
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }
}

// `Retry-After` in milliseconds, in seconds or as an HTTP date; 0 when absent or unreadable.
export function retryAfterMs(header, now = Date.now()) {
  if (!header) return 0;
  if (/^\s*\d+\s*$/.test(header)) return Number(header) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? 0 : Math.max(0, at - now);
}

// text/event-stream, as the WHATWG spec reads it: lines end in CRLF, LF or CR; a blank line dispatches
// the frame; `data` lines join with "\n"; comments (": ping") are skipped.
export class EventStreamParser {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.buffer = "";
    this.frame = {};
  }

  push(text) {
    this.buffer += text;
    // A CR at the very end may be half of a CRLF whose LF is still on its way: keep it for later.
    const end = this.buffer.endsWith("\r") ? this.buffer.length - 1 : this.buffer.length;
    const lines = this.buffer.slice(0, end).split(/\r\n|\r|\n/);
    this.buffer = lines.pop() + this.buffer.slice(end); // the last piece is a line still arriving
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === "") {
      if (Object.keys(this.frame).length) this.onFrame(this.frame);
      this.frame = {};
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "data") this.frame.data = this.frame.data === undefined ? value : `${this.frame.data}\n${value}`;
    else if (field === "event") this.frame.event = value;
    else if (field === "id" && !value.includes("\0")) this.frame.id = value;
    else if (field === "retry" && /^\d+$/.test(value)) this.frame.retry = Number(value);
  }
}
