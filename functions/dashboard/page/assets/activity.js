// The sessions' feed: their todo lists and their latest messages, for one session or all of them.

import { byCreated } from "./state.js";
import { h, replaceKeepingFocus, timeElement, truncate } from "./dom.js";
import { sessionLink } from "./router.js";

const MESSAGES_SHOWN = 60;
const TODO_MARKS = { completed: "✓", in_progress: "▸", cancelled: "✕", pending: "○" };

export function renderSessionFilter(select, { sessions }, selectedSessionId) {
  const options = [h("option", { value: "" }, "All sessions")];
  const recent = [...sessions.values()].sort((a, b) => (b.updated_at ?? "").localeCompare(a.updated_at ?? ""));
  for (const session of recent) {
    options.push(h("option", { value: session.id, selected: session.id === selectedSessionId },
      `${session.name || session.id}${session.status ? ` (${session.status})` : ""}`));
  }
  select.replaceChildren(...options);
  select.value = selectedSessionId ?? "";
  const open = document.getElementById("session-open");
  open.hidden = !selectedSessionId;
  if (selectedSessionId) open.href = sessionLink(selectedSessionId);
}

export function renderActivity(todoList, messageList, { sessions, todos, messages }, selectedSessionId) {
  const label = (sessionId) => sessions.get(sessionId)?.name || sessionId || "no session";
  const todoItems = [];
  for (const [sessionId, list] of todos) {
    if (selectedSessionId && sessionId !== selectedSessionId) continue;
    if (!selectedSessionId && list.length) todoItems.push(h("li", { class: "group" }, label(sessionId)));
    for (const todo of list) {
      todoItems.push(h("li", { class: `todo todo-${todo.status}`, dataset: { todoId: todo.id } },
        h("span", { class: "mark", "aria-hidden": "true" }, TODO_MARKS[todo.status] ?? "○"),
        h("span", { class: "todo-content" }, todo.content),
        h("span", { class: "visually-hidden" }, ` (${todo.status.replace("_", " ")})`),
        todo.priority === "high" ? h("span", { class: "priority priority-high" }, "high") : null));
    }
  }
  replaceKeepingFocus(todoList, todoItems.length ? todoItems : [h("li", { class: "empty" }, "No todos.")]);

  const shown = [...messages.values()]
    .filter((message) => !selectedSessionId || message.session_id === selectedSessionId)
    .sort(byCreated).reverse().slice(0, MESSAGES_SHOWN);
  replaceKeepingFocus(messageList, shown.length ? shown.map((message) => messageItem(message, label))
    : [h("li", { class: "empty" }, "No messages yet.")]);
}

function messageItem(message, label) {
  const kind = message.type === "chat" ? (message.role || "chat") : message.type;
  return h("li", { class: `message message-${message.type}`, dataset: { messageId: message.id } },
    h("div", { class: "message-meta muted" },
      h("span", { class: `badge kind-${message.type}` }, kind),
      message.session_id ? h("a", { href: sessionLink(message.session_id, message.id), "data-route": "",
        class: "session-link" }, label(message.session_id)) : h("span", {}, label(message.session_id)),
      message.agent ? h("span", {}, message.agent) : null,
      timeElement(message.created_at)),
    h("div", { class: "message-content" }, truncate(message.content, 600) || h("span", { class: "muted" }, "…")));
}
