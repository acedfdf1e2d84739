// The agent tree: each primary agent with the sub-agents it spawned beneath it.

import { h, replaceKeepingFocus, timeElement } from "./dom.js";
import { agentLink } from "./router.js";

export function renderAgents(container, { agents, tasks }, selectedAgentId) {
  const children = new Map(); // parent id (null: top level) -> agents
  for (const agent of agents.values()) {
    // A sub-agent whose parent we do not know is still shown, at the top level.
    const parent = agent.parent_agent_id && agents.has(agent.parent_agent_id) ? agent.parent_agent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(agent);
  }
  for (const list of children.values()) list.sort(byTypeThenName);
  const shown = new Set(); // a parent loop in the data must not hang the page
  const node = (agent) => {
    shown.add(agent.id);
    const below = (children.get(agent.id) ?? []).filter((child) => !shown.has(child.id));
    return h("li", { class: "agent", dataset: { agentId: agent.id } },
      agentRow(agent, tasks.get(agent.current_task_id), agent.id === selectedAgentId),
      below.length ? h("ul", { class: "tree", "aria-label": `Sub-agents of ${agent.name}` }, below.map(node)) : null);
  };
  const roots = children.get(null) ?? [];
  replaceKeepingFocus(container, roots.length ? roots.map(node)
    : [h("li", { class: "empty" }, "No agents yet: one appears here as soon as it sends an event.")]);
}

function agentRow(agent, currentTask, selected) {
  return h("div", { class: `agent-row${selected ? " selected" : ""}` },
    h("span", { class: `status-dot status-${agent.status}`, "aria-hidden": "true" }),
    h("div", { class: "agent-main" },
      h("div", { class: "agent-title" },
        h("a", { href: agentLink(agent.id), "data-route": "", class: "agent-link",
          "aria-label": `${agent.name || agent.id}: profile` }, h("strong", { class: "agent-name" }, agent.name || agent.id)),
        h("span", { class: "badge" }, agent.type === "sub-agent" ? "sub-agent" : "primary"),
        h("span", { class: `pill status-${agent.status}`, dataset: { role: "status" } }, agent.status)),
      h("div", { class: "agent-meta muted" },
        agent.name && agent.name !== agent.id ? h("code", {}, agent.id) : null,
        h("span", { class: "heartbeat" }, timeElement(agent.last_heartbeat, "heartbeat ")),
        currentTask ? h("span", { class: "current-task" }, `on “${currentTask.title}”`) : null),
      agent.status_reason ? h("div", { class: "reason" }, agent.status_reason) : null));
}

function byTypeThenName(a, b) {
  return (a.type === "primary" ? 0 : 1) - (b.type === "primary" ? 0 : 1)
    || (a.name || a.id).localeCompare(b.name || b.id);
}
