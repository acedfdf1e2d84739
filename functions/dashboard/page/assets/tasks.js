// Every agent's tasks: BLOCKED ones on top (longest blocked first), each with its Unblock button.

import { h, replaceKeepingFocus, timeElement } from "./dom.js";

const FINISHED = new Set(["completed", "cancelled"]);
const STATUS_ORDER = { blocked: 0, in_progress: 1, pending: 2 };
const PRIORITY_ORDER = { urgent: 0, high: 1, medium: 2, low: 3 };
const FINISHED_SHOWN = 30;

export function renderTasks(openList, finishedList, { tasks, agents }, { onUnblock, selectedTaskId }) {
  const open = [...tasks.values()].filter((task) => !FINISHED.has(task.status)).sort(openOrder);
  const finished = [...tasks.values()].filter((task) => FINISHED.has(task.status))
    .sort((a, b) => (b.completed_at ?? b.updated_at ?? "").localeCompare(a.completed_at ?? a.updated_at ?? ""));
  const item = (task) => taskItem(task, agents.get(task.agent_id), { onUnblock, selected: task.id === selectedTaskId });
  replaceKeepingFocus(openList, open.length ? open.map(item) : [h("li", { class: "empty" }, "No open tasks.")]);
  replaceKeepingFocus(finishedList, finished.slice(0, FINISHED_SHOWN).map(item));
  finishedList.closest("details").querySelector(".count-inline").textContent = `(${finished.length})`;
}

function openOrder(a, b) {
  return (STATUS_ORDER[a.status] ?? 3) - (STATUS_ORDER[b.status] ?? 3)
    || (a.status === "blocked" ? (a.blocked_at ?? "").localeCompare(b.blocked_at ?? "") : 0)
    || (PRIORITY_ORDER[a.priority] ?? 2) - (PRIORITY_ORDER[b.priority] ?? 2)
    || (b.created_at ?? "").localeCompare(a.created_at ?? "");
}

function taskItem(task, agent, { onUnblock, selected }) {
  const blocked = task.status === "blocked";
  const question = task.question?.status === "pending" ? task.question : null;
  return h("li", { class: `task${blocked ? " blocked" : ""}${selected ? " selected" : ""}`,
    dataset: { taskId: task.id, status: task.status } },
  h("div", { class: "task-head" },
    h("span", { class: `pill status-${task.status}`, dataset: { role: "status" } }, statusLabel(task.status)),
    h("strong", { class: "task-title" }, task.title),
    h("span", { class: `priority priority-${task.priority}` }, task.priority)),
  h("div", { class: "task-meta muted" },
    h("span", {}, agent?.name || task.agent_id),
    blocked ? timeElement(task.blocked_at, "blocked ")
      : task.completed_at ? timeElement(task.completed_at, `${task.status} `)
        : task.started_at ? timeElement(task.started_at, "started ") : timeElement(task.created_at, "created ")),
  blocked && task.blocked_reason ? h("p", { class: "reason" }, task.blocked_reason) : null,
  question ? h("p", { class: "question" }, h("strong", {}, `${question.type}: `), question.text) : null,
  blocked ? h("button", { type: "button", class: "primary unblock", "aria-label": `Unblock “${task.title}”`,
    dataset: { focusKey: `unblock:${task.id}` }, onclick: (event) => onUnblock(task, event.currentTarget) },
  "Unblock") : null);
}

function statusLabel(status) {
  return status === "blocked" ? "BLOCKED" : status.replace("_", " ");
}
