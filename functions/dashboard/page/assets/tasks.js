// Every agent's tasks: BLOCKED ones on top (longest blocked first), each with its Unblock button — or,
// when its agent asked a question, the control that answers it: a text box, Allow / Deny, or one button
// per choice.

import { h, replaceKeepingFocus, timeElement } from "./dom.js";

const FINISHED = new Set(["completed", "cancelled"]);
const STATUS_ORDER = { blocked: 0, in_progress: 1, pending: 2 };
const PRIORITY_ORDER = { urgent: 0, high: 1, medium: 2, low: 3 };
const FINISHED_SHOWN = 30;
const QUESTION_LABELS = { question: "Question:", permission: "Permission:", choice: "Choose:" };
// What a person has typed into an answer box, by question id: the list is redrawn on every change
// that arrives over the stream, and a half-written answer must survive that.
const drafts = new Map();

export function renderTasks(openList, finishedList, { tasks, agents }, { onUnblock, onAnswer, selectedTaskId }) {
  const open = [...tasks.values()].filter((task) => !FINISHED.has(task.status)).sort(openOrder);
  const finished = [...tasks.values()].filter((task) => FINISHED.has(task.status))
    .sort((a, b) => (b.completed_at ?? b.updated_at ?? "").localeCompare(a.completed_at ?? a.updated_at ?? ""));
  const item = (task) => taskItem(task, agents.get(task.agent_id),
    { onUnblock, onAnswer, selected: task.id === selectedTaskId });
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

function taskItem(task, agent, { onUnblock, onAnswer, selected }) {
  const blocked = task.status === "blocked";
  const question = blocked && task.question?.status === "pending" ? task.question : null;
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
  // An agent's question is also its blocked reason unless it gave one: say it once.
  blocked && task.blocked_reason && task.blocked_reason !== question?.text
    ? h("p", { class: "reason" }, task.blocked_reason) : null,
  question ? questionBlock(task, question, onAnswer) : answeredLine(task.question),
  blocked && !question ? h("button", { type: "button", class: "primary unblock", "aria-label": `Unblock “${task.title}”`,
    dataset: { focusKey: `unblock:${task.id}` }, onclick: (event) => onUnblock(task, event.currentTarget) },
  "Unblock") : null);
}

// The question waiting for a person, and the control its type takes.
function questionBlock(task, question, onAnswer) {
  const focus = (what) => ({ focusKey: `answer:${task.id}:${what}` });
  const send = (body) => (event) => onAnswer(task, body, event.currentTarget);
  let control;
  if (question.type === "permission") {
    control = h("div", { class: "answer-buttons", role: "group", "aria-label": `Allow or deny: ${question.text}` },
      h("button", { type: "button", class: "primary", dataset: focus("allow"), onclick: send({ permission: true }) },
        "Allow"),
      h("button", { type: "button", dataset: focus("deny"), onclick: send({ permission: false }) }, "Deny"));
  } else if (question.type === "choice") {
    control = h("div", { class: "answer-buttons", role: "group", "aria-label": `Choose: ${question.text}` },
      (question.choices ?? []).map((choice, index) => h("button", { type: "button", dataset: focus(`choice-${index}`),
        onclick: send({ choice }) }, choice)));
  } else {
    const box = h("textarea", { rows: 2, maxlength: 10000, required: true, "aria-label": `Answer to: ${question.text}`,
      dataset: focus("text"), oninput: (event) => drafts.set(question.id, event.currentTarget.value) });
    box.value = drafts.get(question.id) ?? "";
    control = h("form", { class: "answer-text", onsubmit: (event) => {
      event.preventDefault();
      const response = box.value.trim();
      if (!response) return;
      drafts.delete(question.id);
      onAnswer(task, { response }, event.submitter ?? event.currentTarget);
    } }, box, h("button", { type: "submit", class: "primary", dataset: focus("send") }, "Send answer"));
  }
  return h("div", { class: "question", dataset: { questionType: question.type } },
    h("p", {}, h("strong", {}, QUESTION_LABELS[question.type] ?? "Question:"), " ", question.text),
    control);
}

// The latest question once it is settled: who answered what, or that nobody did in time.
function answeredLine(question) {
  if (question?.status === "answered") {
    const { answer } = question;
    const given = "permission" in answer ? (answer.permission ? "Allow" : "Deny") : `“${answer.choice ?? answer.response}”`;
    return h("p", { class: "question settled muted" }, `${question.text} — ${given}, answered by ${question.answered_by}`);
  }
  if (question?.status === "timed_out") {
    return h("p", { class: "question settled muted" }, `${question.text} — nobody answered in time; the agent was told`);
  }
  return null;
}

function statusLabel(status) {
  return status === "blocked" ? "BLOCKED" : status.replace("_", " ");
}
