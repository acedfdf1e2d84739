// An agent's profile at /agents/<id>: who it is (name, type, parent and sub-agents, status, heartbeat),
// its soul_md (markdown.js: never markup), its skills, its current task and task history, its sessions
// and what it has cost. Asked again when the feed says the agent or one of its tasks changed.

import { api, path } from "./api.js";
import { h, timeElement } from "./dom.js";
import { markdown } from "./markdown.js";
import { agentLink, sessionLink } from "./router.js";
import { summary } from "./usage.js";

const TASKS_SHOWN = 50;
const SESSIONS_SHOWN = 50;
const REFRESH_AFTER_MS = 500; // a burst of changes is one refresh

let view = null; // {agentId, container, timer}

export function closeProfile() {
  clearTimeout(view?.timer);
  view = null;
}

export function openProfile(container, agentId) {
  closeProfile();
  const current = view = { agentId, container, timer: null };
  container.replaceChildren(h("section", { class: "profile", "aria-labelledby": "profile-title" },
    h("header", { class: "view-head" }, h("a", { href: "/", class: "back", "data-route": "" }, "← Dashboard"),
      h("h2", { id: "profile-title" }, agentId)),
    h("p", { class: "muted" }, "Loading…")));
  return load(current);
}

export function profileChange({ topic, payload }) {
  const current = view;
  if (!current || !payload) return;
  const about = topic === "agent" ? payload.id === current.agentId || payload.parent_agent_id === current.agentId
    : topic === "task" ? payload.agent_id === current.agentId
      : topic === "session" ? payload.agent_id === current.agentId : false;
  if (!about) return;
  clearTimeout(current.timer);
  current.timer = setTimeout(() => load(current), REFRESH_AFTER_MS);
}

async function load(current) {
  const { agentId } = current;
  let profile, tasks, sessions, usage;
  try {
    [profile, tasks, sessions, usage] = await Promise.all([
      api(path`/api/agent/${agentId}/profile`),
      api(path`/api/agent/${agentId}/tasks` + `?limit=${TASKS_SHOWN}`),
      api(path`/api/sess?agent_id=${agentId}` + `&limit=${SESSIONS_SHOWN}`),
      api(path`/api/usage?agent_id=${agentId}`).catch(() => null), // no figures: no cost line
    ]);
  } catch (error) {
    if (view !== current || error.status === 401) return;
    current.container.querySelector(".profile > p")?.replaceWith(h("p", { class: "error" },
      error.status === 404 ? "There is no such agent." : `The agent could not be loaded: ${error.message}`));
    return;
  }
  if (view !== current) return;
  current.container.replaceChildren(render(profile, tasks.tasks, sessions.sessions, usage?.totals));
}

function render({ agent, parent, children, current_task: currentTask }, tasks, sessions, totals) {
  return h("section", { class: "profile", "aria-labelledby": "profile-title" },
    h("header", { class: "view-head" },
      h("a", { href: "/", class: "back", "data-route": "" }, "← Dashboard"),
      h("h2", { id: "profile-title" }, agent.name || agent.id),
      h("div", { class: "view-meta muted" },
        h("span", { class: "badge" }, agent.type === "sub-agent" ? "sub-agent" : "primary"),
        h("span", { class: `pill status-${agent.status}`, dataset: { role: "status" } }, agent.status),
        h("span", { class: "heartbeat" }, timeElement(agent.last_heartbeat, "heartbeat ")),
        agent.name && agent.name !== agent.id ? h("code", {}, agent.id) : null),
      agent.status_reason ? h("p", { class: "reason" }, agent.status_reason) : null),
    block("Family", "profile-family",
      h("p", {}, "Parent: ", parent ? agentAnchor(parent) : h("span", { class: "muted" }, "none (a primary agent)")),
      h("p", {}, "Sub-agents: ", children.length
        ? children.map((child, index) => [index ? ", " : "", agentAnchor(child)]) : h("span", { class: "muted" }, "none"))),
    block("Cost", "profile-cost", h("p", {}, totals?.messages ? summary(totals) : "Nothing spent yet.")),
    block("Soul", "profile-soul", agent.soul_md ? markdown(agent.soul_md) : h("p", { class: "muted" }, "No soul_md.")),
    block("Skills", "profile-skills", skills(agent.skills)),
    block("Current task", "profile-current", currentTask ? taskItem(agent.id, currentTask, "div")
      : h("p", { class: "muted" }, "None.")),
    block("Tasks", "profile-tasks", tasks.length
      ? h("ul", { class: "list" }, tasks.map((task) => taskItem(agent.id, task, "li")))
      : h("p", { class: "muted" }, "No tasks yet.")),
    block("Sessions", "profile-sessions", sessions.length
      ? h("ul", { class: "list" }, sessions.map((session) => h("li", { class: "profile-session" },
        h("a", { href: sessionLink(session.id), "data-route": "" }, session.name || session.id),
        session.status ? h("span", { class: `pill status-${session.status}` }, session.status) : null,
        timeElement(session.started_at, "started "))))
      : h("p", { class: "muted" }, "No sessions yet.")));
}

function block(title, id, ...content) {
  return h("section", { class: "profile-block", "aria-labelledby": id }, h("h3", { id }, title), content);
}

function agentAnchor(agent) {
  return h("a", { href: agentLink(agent.id), "data-route": "" }, agent.name || agent.id);
}

// Skills are whatever the agent registered: names, or objects with a name (and maybe a description).
function skills(list) {
  if (!Array.isArray(list) || !list.length) return h("p", { class: "muted" }, "None registered.");
  return h("ul", { class: "skills" }, list.map((skill) => {
    if (typeof skill === "string") return h("li", { class: "label" }, skill);
    const name = skill?.name ?? JSON.stringify(skill);
    return h("li", { class: "label", title: skill?.description ?? null }, String(name));
  }));
}

function taskItem(agentId, task, tag) {
  return h(tag, { class: "profile-task", dataset: { taskId: task.id } },
    h("span", { class: `pill status-${task.status}` }, task.status.replace("_", " ")),
    h("a", { href: agentLink(agentId, task.id), "data-route": "" }, task.title),
    task.completed_at ? timeElement(task.completed_at, `${task.status} `)
      : timeElement(task.created_at, "created "));
}
