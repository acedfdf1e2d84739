// The alert rules' in-app notifications, newest first, with a count of the unread ones.

import { h, replaceKeepingFocus, timeElement } from "./dom.js";

const SHOWN = 50;

export function renderNotifications(list, countBadge, { notifications }, { onRead }) {
  const all = [...notifications.values()].sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? "")
    || b.id - a.id);
  const unread = all.filter((notification) => !notification.read_at).length;
  countBadge.hidden = unread === 0;
  countBadge.textContent = String(unread);
  countBadge.setAttribute("aria-label", `${unread} unread`);
  replaceKeepingFocus(list, all.length ? all.slice(0, SHOWN).map((notification) => item(notification, onRead))
    : [h("li", { class: "empty" }, "Nothing to report.")]);
}

function item(notification, onRead) {
  const unread = !notification.read_at;
  return h("li", { class: `notification${unread ? " unread" : ""}`, dataset: { notificationId: notification.id } },
    h("div", { class: "notification-head" },
      h("strong", {}, notification.title),
      timeElement(notification.created_at)),
    notification.body ? h("p", { class: "notification-body" }, notification.body) : null,
    unread ? h("button", { type: "button", class: "link", dataset: { focusKey: `read:${notification.id}` },
      onclick: () => onRead(notification) }, "Mark read") : null);
}
