// The tab bar a phone shows (index.html's #sections): how many tasks wait for the person.

export function renderNeedsYou(badge, { tasks }) {
  const blocked = [...tasks.values()].filter((task) => task.status === "blocked").length;
  badge.hidden = blocked === 0;
  badge.textContent = String(blocked);
  badge.setAttribute("aria-label", `${blocked} blocked`);
}
