// The alert rules' in-app notifications, newest first, with a count of the unread ones. Each names its
// agent and task and opens them (the dashboard with the task picked out, where it can be answered);
// "Mark all read" reads every one.

import { h, replaceKeepingFocus, timeElement } from "./dom.js";
import { agentLink } from "./router.js";

const SHOWN = 50;

export function renderNotifications(list, countBadge, readAll, { notifications, agents, tasks }, { onRead, onOpen }) {
  const all = [...notifications.values()].sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? "")
    || b.id - a.id);
  const unread = all.filter((notification) => !notification.read_at).length;
  countBadge.hidden = unread === 0;
  countBadge.textContent = String(unread);
  countBadge.setAttribute("aria-label", `${unread} unread`);
  readAll.hidden = unread === 0;
  const about = (notification) => ({ agent: agents.get(notification.agent_id), task: tasks.get(notification.task_id) });
  replaceKeepingFocus(list, all.length
    ? all.slice(0, SHOWN).map((notification) => item(notification, about(notification), { onRead, onOpen }))
    : [h("li", { class: "empty" }, "Nothing to report.")]);
}

function item(notification, { agent, task }, { onRead, onOpen }) {
  const unread = !notification.read_at;
  const link = notification.agent_id ? agentLink(notification.agent_id, notification.task_id) : null;
  return h("li", { class: `notification${unread ? " unread" : ""}`, dataset: { notificationId: notification.id } },
    h("div", { class: "notification-head" },
      h("strong", {}, notification.title),
      timeElement(notification.created_at)),
    notification.body ? h("p", { class: "notification-body" }, notification.body) : null,
    h("div", { class: "notification-actions" },
      link ? h("a", { href: link, "data-route": "", class: "open", dataset: { focusKey: `open:${notification.id}` },
        onclick: () => onOpen(notification) },
      `Open ${agent?.name || notification.agent_id}${task ? ` · ${task.title}` : ""}`) : null,
      unread ? h("button", { type: "button", class: "link", dataset: { focusKey: `read:${notification.id}` },
        onclick: () => onRead(notification) }, "Mark read") : null));
}
