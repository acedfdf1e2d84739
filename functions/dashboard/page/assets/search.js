// The search box: GET /api/search, its hits with the matched words marked, each opening where it lives.

import { api } from "./api.js";
import { byId, h, replaceKeepingFocus, timeElement } from "./dom.js";

const HITS_SHOWN = 20;
const KIND_LABELS = { message: "message", todo: "todo", task: "task", question: "question", linear_issue: "issue" };

// `onOpen({sessionId, messageId})` shows a message or todo in its session on this page; other hits
// (a task, an issue) follow their link.
export function setUpSearch({ onOpen }) {
  const form = byId("search-form");
  const input = byId("search-input");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const q = input.value.trim();
    const results = byId("search-results");
    byId("search-error").textContent = "";
    if (!q) {
      results.replaceChildren();
      return;
    }
    results.setAttribute("aria-busy", "true");
    try {
      const { hits } = await api(`/api/search?q=${encodeURIComponent(q)}&limit=${HITS_SHOWN}`);
      replaceKeepingFocus(results, hits.length ? hits.map((hit) => hitItem(hit, onOpen))
        : [h("li", { class: "empty" }, `Nothing matches “${q}”.`)]);
    } catch (error) {
      if (error.status === 401) return;
      results.replaceChildren();
      byId("search-error").textContent = error.message;
    } finally {
      results.removeAttribute("aria-busy");
    }
  });
}

function hitItem(hit, onOpen) {
  const opensHere = (hit.kind === "message" || hit.kind === "todo") && hit.session_id;
  const link = h("a", {
    href: hit.link, class: "hit-link", dataset: { focusKey: `${hit.kind}:${hit.id}` },
    onclick: opensHere ? (event) => {
      event.preventDefault();
      onOpen({ sessionId: hit.session_id, messageId: hit.kind === "message" ? Number(hit.id) : null });
    } : null,
  }, snippet(hit.snippet));
  return h("li", { class: "hit", dataset: { kind: hit.kind, hitId: hit.id } },
    h("div", { class: "message-meta muted" },
      h("span", { class: `badge kind-${hit.kind}` }, KIND_LABELS[hit.kind] ?? hit.kind),
      hit.agent_id ? h("span", {}, hit.agent_id) : null,
      hit.session_id ? h("span", {}, hit.session_id) : null,
      timeElement(hit.time)),
    link);
}

// The server's segments as text, the matched words in <mark>: never markup from the data.
function snippet(segments) {
  return segments.map((segment) => (segment.match ? h("mark", {}, segment.text) : segment.text));
}
