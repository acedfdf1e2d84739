// One session's transcript: every message in order, read a page at a time by cursor as the person
// scrolls up (older) or down (newer), from the newest or from any message a link names; new messages
// arrive live at the bottom. Text is rendered as markdown (markdown.js: never markup), long text is folded
// behind "Show all", tool calls open to their input and output, and the files the session changed are
// listed above.

import { api, path } from "./api.js";
import { h, timeElement, toast } from "./dom.js";
import { takeEarly } from "./early.js";
import { markdown } from "./markdown.js";
import { firstPage } from "./messages.js";
import { agentLink, sessionLink } from "./router.js";
import { sessionUsage } from "./usage.js";

const PAGE = 100;
const MAX_SHOWN = 600; // messages in the page at once, however long the session
const NEAR_PX = 800;
const FOLD_CHARS = 4000;
const FOLD_LINES = 60;
const LOAD_MARGIN = `${NEAR_PX}px 0px`; // a page is asked for this far before the person reaches the end

let view = null; // the transcript on the screen: see openTranscript

export function closeTranscript() {
  view?.observer.disconnect();
  view = null;
}

export async function openTranscript(container, sessionId, messageId, { agents }) {
  closeTranscript();
  const list = h("ol", { class: "transcript-messages", "aria-label": "Messages" });
  const older = h("p", { class: "transcript-edge muted" });
  const newer = h("p", { class: "transcript-edge muted" });
  const head = h("header", { class: "view-head" },
    h("a", { href: "/", class: "back", "data-route": "" }, "← Dashboard"),
    h("h2", { id: "transcript-title" }, sessionId));
  const files = h("div", { class: "session-files" });
  const usage = h("p", { class: "session-usage muted" });
  sessionUsage(sessionId).then((text) => { usage.textContent = text; }, () => {}); // no figures: no line
  const current = view = { sessionId, list, older, newer, head, files, agents, reachedOldest: false, atNewest: false,
    loading: new Set(), observer: null };
  container.replaceChildren(h("section", { class: "transcript", "aria-labelledby": "transcript-title" },
    head, usage, files,
    h("div", { class: "transcript-jump" },
      h("button", { type: "button", onclick: () => openAt(current, "oldest") }, "Oldest"),
      h("button", { type: "button", onclick: () => openAt(current, "newest") }, "Newest")),
    older, list, newer));
  api(path`/api/sess/${sessionId}`).then(({ session, files: changed }) => {
    if (view !== current) return;
    showHeader(current, session);
    showFiles(current, changed);
  }).catch((error) => {
    if (view === current && error.status !== 401) {
      head.append(h("p", { class: "error" }, error.status === 404 ? "There is no such session." : error.message));
    }
  });
  current.observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      loadPage(current, entry.target === older);
    }
  }, { rootMargin: LOAD_MARGIN });
  await openAt(current, messageId ?? "newest");
  current.observer.observe(older);
  current.observer.observe(newer);
}

// Start afresh at the newest messages, the oldest, or around one message.
async function openAt(current, where) {
  let first;
  try {
    first = await (takeEarly(current.sessionId, where) ?? firstPage(current.sessionId, where));
  } catch (error) {
    if (view !== current || error.status === 401) return;
    if (error.field === "from_id") {
      toast("That message is not in this session any more: here are its newest messages.", "error");
      await openAt(current, "newest");
    } else {
      current.older.textContent = `The messages could not be loaded: ${error.message}`;
    }
    return;
  }
  if (view !== current) return;
  const { rows, reachedOldest, atNewest } = first;
  Object.assign(current, { reachedOldest, atNewest });
  current.list.replaceChildren(...rows.map((message) => messageElement(message, current)));
  showEdges(current);
  if (where === "newest") scrollToBottom();
  else if (where === "oldest") window.scrollTo(0, 0);
  else {
    const target = shown(current, where);
    target?.classList.add("target");
    target?.scrollIntoView({ block: "center" });
  }
  if (current.list.children.length && !current.shownAt) {
    current.shownAt = performance.now();
    performance.mark("transcript-shown");
  }
}

// The next page beyond the first (older) or last (newer) message shown: asked from that message, so the
// list can drop what is far off screen and still go on from its ends.
async function loadPage(current, older) {
  const edge = older ? "older" : "newer";
  const end = older ? current.list.firstElementChild : current.list.lastElementChild;
  if (!end || current.loading.has(edge) || (older ? current.reachedOldest : current.atNewest)) return;
  current.loading.add(edge);
  showEdges(current);
  try {
    const page = await api(path`/api/msgs?session_id=${current.sessionId}&from_id=${end.message.id}` +
      `&limit=${PAGE + 1}${older ? "" : "&order=oldest_first"}`);
    if (view !== current || !end.isConnected) return;
    const rows = page.messages.filter((message) => message.id !== end.message.id && !shown(current, message.id));
    const elements = rows.map((message) => messageElement(message, current));
    if (older) {
      keepingPlace(() => current.list.prepend(...elements.reverse()));
      current.reachedOldest = !page.next_cursor;
    } else {
      current.list.append(...elements);
      current.atNewest = !page.next_cursor;
    }
    trim(current, older);
  } catch (error) {
    if (error.status === 401 || view !== current) return;
    if (error.field === "from_id") end.remove(); // that message was removed meanwhile: go on from the next
    else toast(`More messages could not be loaded: ${error.message}`, "error");
  } finally {
    current.loading.delete(edge);
    if (view === current) showEdges(current);
  }
  // The observer only says when an edge comes into view: if it is still in view after a page, go on.
  requestAnimationFrame(() => {
    const box = (older ? current.older : current.newer).getBoundingClientRect();
    if (view === current && box.bottom > -NEAR_PX && box.top < innerHeight + NEAR_PX) loadPage(current, older);
  });
}

// At most MAX_SHOWN messages stay in the page: reading back (or on) drops the far end, which comes again
// by scrolling there.
function trim(current, older) {
  const extra = current.list.children.length - MAX_SHOWN;
  if (extra <= 0) return;
  if (older) {
    for (let n = 0; n < extra; n += 1) current.list.lastElementChild.remove();
    current.atNewest = false;
  } else {
    keepingPlace(() => {
      for (let n = 0; n < extra; n += 1) current.list.firstElementChild.remove();
    });
    current.reachedOldest = false;
  }
}

// What the person is reading stays where it is while the page changes above it.
function keepingPlace(change) {
  const before = document.documentElement.scrollHeight;
  change();
  window.scrollBy(0, document.documentElement.scrollHeight - before);
}

function showEdges(current) {
  current.older.textContent = current.loading.has("older") ? "Loading older messages…"
    : current.reachedOldest ? "The start of the session." : "";
  current.newer.textContent = current.loading.has("newer") ? "Loading newer messages…"
    : current.atNewest ? "" : "Scroll down for newer messages.";
}

function shown(current, id) {
  return current.list.querySelector(`:scope > [data-message-id="${CSS.escape(String(id))}"]`);
}

function scrollToBottom() {
  window.scrollTo(0, document.documentElement.scrollHeight);
}

// The live feed ------------------------------------------------------------------------------------------

export function transcriptChange({ topic, action, payload }) {
  const current = view;
  if (!current || !payload) return;
  if (topic === "session" && payload.id === current.sessionId) showHeader(current, payload);
  if (topic === "session" && action === "files" && payload.session_id === current.sessionId) {
    showFiles(current, payload.files);
  }
  if (topic === "file" && payload.session_id === current.sessionId) {
    api(path`/api/sess/${current.sessionId}`).then(({ files }) => view === current && showFiles(current, files),
      () => {}); // the next change says it again
  }
  const message = topic === "error" ? payload.message : topic === "message" ? payload : null;
  if (!message || message.session_id !== current.sessionId) return;
  if (action === "removed") {
    for (const element of current.list.querySelectorAll(":scope > [data-external-id]")) {
      if (element.dataset.externalId === message.external_id) element.remove();
    }
    return;
  }
  if (action === "read" || !message.id) return;
  const existing = shown(current, message.id);
  const element = messageElement(message, current);
  if (existing) {
    existing.replaceWith(element);
    return;
  }
  // A message newer than the last one shown goes at the bottom, if the bottom is the newest there is.
  const last = current.list.lastElementChild;
  if (last && compare(message, last.message) < 0) {
    const after = [...current.list.children].reverse().find((other) => compare(other.message, message) < 0);
    if (after) after.after(element); // within what is shown (an old message streamed again, say)
    return;
  }
  if (!current.atNewest) return; // the person reads further back; they reach it by scrolling down
  const atBottom = innerHeight + scrollY >= document.documentElement.scrollHeight - 80;
  current.list.append(element);
  if (atBottom) scrollToBottom();
}

function compare(a, b) {
  return (a.created_at ?? "").localeCompare(b.created_at ?? "") || a.id - b.id;
}

// Drawing ------------------------------------------------------------------------------------------------

function showHeader(current, session) {
  const agent = session.agent_id ? current.agents.get(session.agent_id) : null;
  current.head.replaceChildren(
    h("a", { href: "/", class: "back", "data-route": "" }, "← Dashboard"),
    h("h2", { id: "transcript-title" }, session.name || session.id),
    h("div", { class: "view-meta muted" },
      session.status ? h("span", { class: `pill status-${session.status}` }, session.status) : null,
      session.agent_id ? h("a", { href: agentLink(session.agent_id), "data-route": "" },
        agent?.name || session.agent_id) : null,
      session.started_at ? timeElement(session.started_at, "started ") : null,
      session.directory ? h("code", {}, session.directory) : null));
}

function showFiles(current, files) {
  if (!files?.length) {
    current.files.replaceChildren();
    return;
  }
  current.files.replaceChildren(h("details", { class: "files-changed" },
    h("summary", {}, `Files changed (${files.length})`),
    h("ul", { class: "list" }, files.map((file) => h("li", { class: "file" },
      h("code", {}, file.file),
      file.status ? h("span", { class: "badge" }, file.status) : null,
      file.additions !== null && file.additions !== undefined ? h("span", { class: "added" }, `+${file.additions}`) : null,
      file.deletions !== null && file.deletions !== undefined ? h("span", { class: "removed" }, `−${file.deletions}`)
        : null)))));
}

function messageElement(message, current) {
  const kind = message.type === "chat" ? (message.role || "chat") : message.type;
  const agentName = message.agent && current.agents.get(message.agent)?.name;
  const element = h("li", { class: `turn turn-${kind}`, id: `message-${message.id}`,
    dataset: { messageId: message.id, externalId: message.external_id ?? "" } },
  h("div", { class: "turn-meta muted" },
    h("span", { class: `badge kind-${message.type}` }, kind),
    message.agent ? h("span", {}, agentName || message.agent) : null,
    message.model_id ? h("span", { class: "model" }, message.model_id) : null,
    timeElement(message.created_at),
    h("a", { href: sessionLink(current.sessionId, message.id), class: "permalink", "data-route": "",
      "aria-label": "Link to this message" }, "#")),
  h("div", { class: "turn-body" }, body(message)));
  element.message = message;
  return element;
}

function body(message) {
  const parts = Array.isArray(message.parts) ? message.parts.filter((part) => part && typeof part === "object") : [];
  if (message.type === "tool" && parts.length) {
    const [call] = parts;
    return toolCall(call.tool, call.args, call.output, call.state, call.title);
  }
  const shown = parts.map(part);
  if (shown.some(Boolean)) return shown;
  return message.content ? folded(message.content, markdown) : h("span", { class: "muted" }, "…");
}

function part(item) {
  if (item.type === "text" && typeof item.text === "string") return folded(item.text, markdown);
  if (item.type === "reasoning" && typeof item.text === "string") {
    return h("details", { class: "reasoning" }, h("summary", {}, "Thinking"), folded(item.text, markdown));
  }
  if (item.type === "tool") {
    const state = item.state ?? {};
    return toolCall(item.tool, state.input, state.output ?? state.error, state.status, state.title);
  }
  if (item.type === "file") {
    return h("p", { class: "muted" }, `File: ${item.filename || item.url || item.mime || "attached"}`);
  }
  return null; // step markers, snapshots, patches: the files list and the tool calls say it better
}

function toolCall(tool, input, output, status, title) {
  return h("details", { class: "tool-call" },
    h("summary", {}, h("code", {}, String(tool ?? "tool")), title ? ` ${title}` : "",
      status ? h("span", { class: `pill status-${status}` }, String(status)) : null),
    h("h4", {}, "Input"),
    h("pre", { class: "tool-input" }, input === undefined ? "(none)" : pretty(input)),
    h("h4", {}, "Output"),
    output === undefined || output === null ? h("p", { class: "muted" }, "(none yet)")
      : folded(pretty(output), (text) => h("pre", { class: "tool-output" }, text)));
}

function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

// Long text shows its start, and "Show all" shows the rest.
function folded(text, render) {
  const lines = text.split("\n", FOLD_LINES + 1);
  if (text.length <= FOLD_CHARS && lines.length <= FOLD_LINES) return render(text);
  const start = lines.slice(0, FOLD_LINES).join("\n").slice(0, FOLD_CHARS);
  const box = h("div", { class: "folded" }, render(start));
  box.append(h("button", { type: "button", class: "show-all", onclick: () => box.replaceChildren(render(text)) },
    `Show all (${text.length.toLocaleString()} characters)`));
  return box;
}
