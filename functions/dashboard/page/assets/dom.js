// Building the page without innerHTML: whatever the server or an agent sent is always text, never markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  const kept = children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false);
  // Spreading a very long list into one call would overflow the stack (a huge message has many parts).
  if (kept.length < 4096) element.append(...kept);
  else for (const child of kept) element.append(child);
  return element;
}

export function byId(id) {
  return document.getElementById(id);
}

// Re-rendering a list must not throw the keyboard user's focus away: the element that had it (found
// again by its data-focus-key) gets it back.
export function replaceKeepingFocus(container, children) {
  const focused = container.contains(document.activeElement) ? document.activeElement.dataset.focusKey : undefined;
  container.replaceChildren(...children);
  if (focused) container.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
}

export function truncate(text, length) {
  if (!text) return "";
  return text.length > length ? `${text.slice(0, length - 1)}…` : text;
}

// Times ---------------------------------------------------------------------------------------------------

export function relative(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

// "12 min ago (14:03)": the relative time, and the absolute one beside it (a phone has no hover to show
// a title); the relative part is kept current by refreshRelativeTimes.
export function timeElement(iso, prefix = "") {
  if (!iso) return h("span", { class: "muted" }, `${prefix}never`);
  const at = new Date(iso);
  return h("time", { datetime: iso, title: formatted("full", at), dataset: { relative: prefix } },
    h("span", { class: "relative" }, prefix + relative(iso)), " ", h("span", { class: "absolute" }, `(${absolute(at)})`));
}

// The clock time for today, with the date before it otherwise (and the year when it is not this one).
export function absolute(at, now = new Date()) {
  const time = formatted("time", at);
  if (at.toDateString() === now.toDateString()) return time;
  return `${formatted(at.getFullYear() === now.getFullYear() ? "date" : "dateAndYear", at)}, ${time}`;
}

// Each format is made once: Date's toLocaleString() and its kin build a new formatter at every call, which
// cost 10-130 ms for a transcript's first 40 messages in a fresh tab, against under 1 ms so.
const FORMATS = {
  full: { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" },
  time: { hour: "2-digit", minute: "2-digit" },
  date: { day: "numeric", month: "short" },
  dateAndYear: { day: "numeric", month: "short", year: "numeric" },
};
const formatters = {};

function formatted(format, at) {
  formatters[format] ??= new Intl.DateTimeFormat([], FORMATS[format]);
  return formatters[format].format(at);
}

export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const element of root.querySelectorAll("time[data-relative] > .relative")) {
    const time = element.parentElement;
    element.textContent = time.dataset.relative + relative(time.getAttribute("datetime"), now);
  }
}

// Messages a person should notice: a short toast (the region is aria-live, so it is read out too).
export function toast(text, kind = "info") {
  const region = byId("toasts");
  const item = h("div", { class: `toast ${kind}` }, text);
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
