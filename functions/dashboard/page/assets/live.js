// The live feed: one EventSource on /api/stream, authenticated by the session cookie.
//
// The browser reconnects by itself after a network error, sending Last-Event-ID, and the server resumes
// from there: nothing is lost. When the browser gives up instead (an answer that is not a stream, say a
// proxy's 502), a new EventSource resumes with ?last_event_id= after a growing pause.

// The feed's topics the page shows; `reset` means "the changes you missed are gone: reload".
const TOPICS = ["agent", "task", "session", "message", "todo", "error", "notification",
  "linear.issue", "linear.project", "linear.state"];

export class LiveFeed {
  constructor({ onChange, onReset, onOpen, onState, onClosed }) {
    Object.assign(this, { onChange, onReset, onOpen, onState, onClosed });
    this.source = null;
    this.lastEventId = null;
    this.retryMs = 1000;
    this.timer = null;
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
    this.source?.close();
    this.source = null;
  }

  connect() {
    const url = this.lastEventId ? `/api/stream?last_event_id=${encodeURIComponent(this.lastEventId)}` : "/api/stream";
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener("open", () => {
      this.retryMs = 1000;
      this.setState("live");
      this.onOpen();
    });
    source.addEventListener("error", () => {
      if (this.stopped || source !== this.source) return;
      this.setState("reconnecting");
      if (source.readyState === EventSource.CLOSED) this.reconnectLater();
    });
    for (const topic of TOPICS) {
      source.addEventListener(topic, (event) => this.receive(event, (change) => this.onChange(change)));
    }
    source.addEventListener("reset", (event) => this.receive(event, () => this.onReset()));
  }

  receive(event, handle) {
    if (event.lastEventId) this.lastEventId = event.lastEventId;
    let change;
    try {
      change = JSON.parse(event.data);
    } catch {
      return; // not ours to show
    }
    handle(change);
  }

  reconnectLater() {
    this.source?.close();
    clearTimeout(this.timer);
    this.timer = setTimeout(async () => {
      if (this.stopped) return;
      // A stream refused for good may mean the session ended: onClosed finds out (and may stop us).
      if (await this.onClosed()) this.connect();
      else if (!this.stopped) this.reconnectLater();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 30000);
  }

  setState(state) {
    this.state = state;
    this.onState(state);
  }
}
