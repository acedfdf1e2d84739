// Where the page is: its address says which view shows, so every view can be linked to and reloaded.
//
//   /                               the dashboard
//   /?session=<id>                  a session's transcript, at its newest messages
//   /?session=<id>&message=<id>     the transcript at that message (a messages row id, as /api/msgs has it)
//   /agents/<id>                    an agent's profile
//   /agents/<id>?task=<id>          the dashboard with that agent's task picked out (push notifications)
//
// Links within the page carry data-route: following one changes the address without loading the page.

export function currentRoute(where = location) {
  const params = new URLSearchParams(where.search);
  const agent = where.pathname.match(/^\/agents\/([^/]+)$/);
  const agentId = agent ? decodeURIComponent(agent[1]) : null;
  if (params.get("session")) {
    return { view: "session", sessionId: params.get("session"), messageId: params.get("message") };
  }
  if (agentId && !params.get("task")) return { view: "agent", agentId };
  return { view: "home", agentId, taskId: params.get("task") };
}

export const sessionLink = (sessionId, messageId = null) =>
  `/?${new URLSearchParams({ session: sessionId, ...(messageId ? { message: String(messageId) } : {}) })}`;

export const agentLink = (agentId, taskId = null) =>
  `/agents/${encodeURIComponent(agentId)}${taskId ? `?${new URLSearchParams({ task: taskId })}` : ""}`;

export function routeKey(route) {
  return JSON.stringify(route);
}

let onRoute = () => {};

// Follow in-page links without a reload; a modified click (new tab, say) is left to the browser.
export function routeLinks(onNavigate) {
  onRoute = onNavigate;
  document.addEventListener("click", (event) => {
    const link = event.target.closest?.("a[data-route]");
    if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey
        || event.altKey) return;
    event.preventDefault();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", () => onRoute());
}

export function navigate(url) {
  if (url !== location.pathname + location.search) history.pushState(null, "", url);
  onRoute();
}
