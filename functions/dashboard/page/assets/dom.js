// Building the page without innerHTML: whatever the server or an agent sent is always text, never markup.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
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

export function timeElement(iso, prefix = "") {
  if (!iso) return h("span", { class: "muted" }, `${prefix}never`);
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString(), dataset: { relative: prefix } },
    prefix + relative(iso));
}

export function refreshRelativeTimes(root = document) {
  const now = Date.now();
  for (const element of root.querySelectorAll("time[data-relative]")) {
    element.textContent = element.dataset.relative + relative(element.getAttribute("datetime"), now);
  }
}

// Messages a person should notice: a short toast (the region is aria-live, so it is read out too).
export function toast(text, kind = "info") {
  const region = byId("toasts");
  const item = h("div", { class: `toast ${kind}` }, text);
  region.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}
