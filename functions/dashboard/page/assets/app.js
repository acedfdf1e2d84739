// The dashboard page: sign in, load what there is, then keep it up to date from the live feed.

import { renderActivity, renderSessionFilter } from "./activity.js";
import { renderAgents } from "./agents.js";
import { api, listAll, path, whenUnauthorized } from "./api.js";
import { busiestProject, renderBoard, renderProjectHeader, renderProjects } from "./board.js";
import { byId, h, refreshRelativeTimes, toast } from "./dom.js";
import { forgetEarly, signedIn } from "./early.js";
import { LiveFeed } from "./live.js";
import { renderNotifications } from "./notifications.js";
import { currentRoute, navigate, routeKey, routeLinks, sessionLink } from "./router.js";
import { closeProfile, openProfile, profileChange } from "./profile.js";
import { renderNeedsYou } from "./sections.js";
import { showSignIn } from "./signin.js";
import { addMessage, applyChange, clearState, findCard, placeCard, removeCard, state } from "./state.js";
import { setUpSearch } from "./search.js";
import { renderTasks } from "./tasks.js";
import { refreshTimeline, renderTimelineFilters, setUpTimeline, timelineChanged } from "./timeline.js";
import { loadUsage, sessionUsage } from "./usage.js";
import { closeTranscript, openTranscript, transcriptChange } from "./transcript.js";

const RELATIVE_TIME_TICK_MS = 10000;
const LOAD_WITHOUT_STREAM_AFTER_MS = 3000;
const RELOAD_AFTER_FAILURE_MS = 5000;
const OPEN_STATUSES = "blocked,in_progress,pending";
const FINISHED_STATUSES = "completed,cancelled";
const FINISHED_PER_AGENT = 20;
const CONNECTION_LABELS = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };
const USAGE_REFRESH_MS = 2000;

const ui = {
  selectedSessionId: null,
  selectedProjectId: localStorage.getItem("ocd.project"),
  deepLink: {}, // the agent and task an address like /agents/<agent>?task=<task> picks out
  route: null, // the key of the view on the screen (router.js)
  loading: false,
  loaded: false,
  pending: [], // changes that arrive while a load is under way, applied after it
  loadAgain: false, // a load was asked for while one was under way
  retryTimer: null,
  usageTimer: null,
};

// The view the address names (router.js): the dashboard, a session's transcript, an agent's profile.
function showRoute() {
  const route = currentRoute();
  const key = routeKey(route);
  if (key === ui.route) return;
  ui.route = key;
  const detail = route.view !== "home";
  byId("view").hidden = !detail;
  byId("panels").hidden = detail;
  byId("sections").classList.toggle("away", detail);
  if (route.view === "session") openTranscript(byId("view"), route.sessionId, route.messageId, state);
  else closeTranscript();
  if (route.view === "agent") openProfile(byId("view"), route.agentId);
  else closeProfile();
  if (route.view === "home") {
    ui.deepLink = { agentId: route.agentId, taskId: route.taskId };
    redraw("agents", "tasks");
    requestAnimationFrame(showDeepLink);
  } else {
    window.scrollTo(0, 0);
  }
}

routeLinks(showRoute);

// Drawing ------------------------------------------------------------------------------------------------
// Views marked dirty are drawn once per animation frame; a hidden tab gets no frames, so it draws
// nothing until it is looked at again.

const VIEWS = {
  agents: () => renderAgents(byId("agent-tree"), state, ui.deepLink.agentId),
  tasks: () => {
    renderTasks(byId("task-list"), byId("finished-list"), state,
      { onUnblock: unblock, onAnswer: answer, selectedTaskId: ui.deepLink.taskId });
    renderNeedsYou(byId("needs-you-count"), state);
  },
  sessions: () => renderSessionFilter(byId("session-filter"), state, ui.selectedSessionId),
  timelineFilters: () => renderTimelineFilters(state),
  activity: () => renderActivity(byId("todo-list"), byId("message-list"), state, ui.selectedSessionId),
  notifications: () => renderNotifications(byId("notifications-list"), byId("notifications-count"),
    byId("notifications-read-all"), state, { onRead: markRead, onOpen: openNotification }),
  projects: () => renderProjects(byId("project-select"), state, ui.selectedProjectId),
  board: () => {
    renderProjectHeader(byId("project-header"), state, { onSaveProdUrl: saveProdUrl });
    renderBoard(byId("board-columns"), state, { onMove: moveCard });
  },
};

const dirty = new Set();
let frame = null;

function redraw(...views) {
  for (const view of views) dirty.add(view);
  frame ??= requestAnimationFrame(draw);
}

function draw() {
  frame = null;
  if (dirty.delete("board-reload")) loadBoard();
  for (const view of [...dirty]) {
    // Redrawing the board mid-drag would take the dragged card away: it waits for the drop.
    if (view === "board" && document.body.classList.contains("dragging-card")) continue;
    dirty.delete(view);
    VIEWS[view]();
  }
}

document.addEventListener("card-drag-ended", () => redraw("board"));

// Loading ------------------------------------------------------------------------------------------------

async function loadAll() {
  if (ui.loading) {
    ui.loadAgain = true; // e.g. a reset during a load: the load under way may have missed something
    return;
  }
  clearTimeout(ui.retryTimer);
  ui.loading = true;
  ui.loadAgain = false;
  ui.pending = [];
  try {
    const [agents, sessions, messages, todos, notifications] = await Promise.all([
      listAll("/api/agents?limit=500", "agents"),
      api("/api/sess?limit=50").then((data) => data.sessions),
      api("/api/msgs?limit=100").then((data) => data.messages),
      api("/api/todos?limit=500").then((data) => data.todos),
      api("/api/notifications?limit=50").then((data) => data.notifications),
    ]);
    // There is one task list per agent (GET /api/agent/{id}/tasks): all its open tasks (an old blocked
    // one must not hide behind newer ones), and its latest finished ones.
    const tasks = (await Promise.all(agents.flatMap((agent) => [
      listAll(path`/api/agent/${agent.id}/tasks` + `?status=${OPEN_STATUSES}&limit=500`, "tasks"),
      api(path`/api/agent/${agent.id}/tasks` + `?status=${FINISHED_STATUSES}&limit=${FINISHED_PER_AGENT}`)
        .then((data) => data.tasks),
    ]))).flat();
    clearState();
    for (const agent of agents) state.agents.set(agent.id, agent);
    for (const task of tasks) state.tasks.set(task.id, task);
    for (const session of sessions) state.sessions.set(session.id, session);
    for (const message of messages) addMessage(message);
    for (const todo of todos.sort((a, b) => (a.position ?? 0) - (b.position ?? 0))) {
      if (!state.todos.has(todo.session_id)) state.todos.set(todo.session_id, []);
      state.todos.get(todo.session_id).push(todo);
    }
    for (const notification of notifications) state.notifications.set(notification.id, notification);
    await loadProjects();
  } catch (error) {
    if (error.status !== 401) {
      toast(`Could not load the dashboard: ${error.message}`, "error");
      ui.retryTimer = setTimeout(() => { if (!byId("dashboard").hidden) loadAll(); }, RELOAD_AFTER_FAILURE_MS);
    }
    return;
  } finally {
    ui.loading = false;
    if (ui.loadAgain) setTimeout(loadAll);
  }
  ui.loaded = true;
  const pending = ui.pending;
  ui.pending = [];
  pending.forEach(apply);
  redraw(...Object.keys(VIEWS));
  refreshTimeline();
  refreshUsage();
  requestAnimationFrame(showDeepLink);
}

// Usage follows the messages' figures: asked again after a burst of message changes.
function usageChanged() {
  ui.usageTimer ??= setTimeout(() => {
    ui.usageTimer = null;
    if (!document.hidden) refreshUsage();
  }, USAGE_REFRESH_MS);
}

async function refreshUsage() {
  try {
    await loadUsage();
    await showSessionUsage();
  } catch (error) {
    if (error.status !== 401) byId("usage-panel").replaceChildren(h("p", { class: "error" }, error.message));
  }
}

async function showSessionUsage() {
  const line = byId("session-usage");
  const text = ui.selectedSessionId ? await sessionUsage(ui.selectedSessionId) : "";
  line.textContent = text;
  line.hidden = !text;
}

async function loadProjects() {
  try {
    const projects = await listAll("/api/projects?limit=100", "projects");
    for (const project of projects) state.projects.set(project.id, project);
    if (!state.projects.has(ui.selectedProjectId)) {
      ui.selectedProjectId = busiestProject(projects)?.id ?? null;
    }
    await loadBoard();
  } catch (error) {
    if (error.status === 401) throw error;
    state.board = null;
    state.linearError = error.code === "linear_not_configured"
      ? "Linear is not configured: set LINEAR_API_KEY and restart the server to see your projects here."
      : `The Linear projects could not be loaded: ${error.message}`;
  }
  redraw("projects", "board");
}

async function saveProdUrl(projectId, prodUrl) {
  try {
    const { project } = await api(path`/api/projects/${projectId}`, { method: "PATCH", body: { prod_url: prodUrl } });
    if (state.board?.project.id === project.id) state.board.project = project;
    toast(prodUrl ? "Production URL saved." : "Production URL removed.");
  } catch (error) {
    toast(`The production URL was not saved: ${error.message}`, "error");
  }
  redraw("board");
}

async function loadBoard() {
  const projectId = ui.selectedProjectId;
  if (!projectId) {
    state.board = null;
    state.linearError = "No Linear project in the cache yet (the sync brings them).";
  } else {
    try {
      const board = await api(path`/api/projects/${projectId}/board`);
      if (ui.selectedProjectId !== projectId) return; // another project was picked meanwhile
      state.board = board;
      state.linearError = null;
    } catch (error) {
      if (error.status === 401) throw error;
      state.board = null;
      state.linearError = `The board could not be loaded: ${error.message}`;
    }
  }
  redraw("board");
}

function showDeepLink() {
  const { agentId, taskId } = ui.deepLink;
  const target = (taskId && document.querySelector(`[data-task-id="${CSS.escape(taskId)}"]`))
    || (agentId && document.querySelector(`[data-agent-id="${CSS.escape(agentId)}"]`));
  target?.scrollIntoView({ block: "center" });
}

// Live changes -------------------------------------------------------------------------------------------

function apply(change) {
  const views = applyChange(change);
  // The timeline's agent and session filters offer the agents and sessions the page knows.
  if (views.includes("agents") || views.includes("sessions")) views.push("timelineFilters");
  redraw(...views);
  timelineChanged();
  if (change.topic === "message") usageChanged();
  transcriptChange(change);
  profileChange(change);
  if (change.topic === "notification" && change.action === "created") toast(change.payload.title);
}

function showConnection(connection) {
  const indicator = byId("connection");
  indicator.dataset.state = connection;
  indicator.querySelector(".label").textContent = CONNECTION_LABELS[connection];
}

const feed = new LiveFeed({
  onChange: (change) => (ui.loading || !ui.loaded ? ui.pending.push(change) : apply(change)),
  onReset: () => loadAll(),
  onOpen: () => {
    // First open: load now that no change can slip between the load and the stream. A stream that
    // had nothing to resume from (no event yet) may have missed changes while it was down: reload.
    if (!ui.loaded && !ui.loading) loadAll();
    else if (ui.loaded && !feed.lastEventId) loadAll();
  },
  onState: showConnection,
  onClosed: async () => {
    try {
      await api("/api/auth/me");
      return true;
    } catch (error) {
      return error.status !== 401; // 401: whenUnauthorized has signed the page out
    }
  },
});

// Actions ------------------------------------------------------------------------------------------------

async function unblock(task, button) {
  button.disabled = true;
  button.textContent = "Unblocking…";
  try {
    const answer = await api(path`/api/agent/${task.agent_id}/tasks/${task.id}/unblock`, { method: "POST" });
    state.tasks.set(answer.task.id, { ...state.tasks.get(answer.task.id), ...answer.task });
    toast(`Unblocked “${task.title}”.`);
  } catch (error) {
    if (error.status === 401) return;
    toast(`Could not unblock “${task.title}”: ${error.message}`, "error");
    if (error.code === "not_blocked" || error.status === 404) {
      const fresh = await api(path`/api/agent/${task.agent_id}/tasks/${task.id}`).catch(() => null);
      if (fresh) state.tasks.set(fresh.task.id, fresh.task);
      else state.tasks.delete(task.id);
    }
  }
  redraw("tasks", "agents");
}

// Answering a task's question: the same Unblock, with the answer as its body.
async function answer(task, body, source) {
  const controls = [...(source?.closest(".question")?.querySelectorAll("button, textarea") ?? [])];
  for (const control of controls) control.disabled = true;
  try {
    const answered = await api(path`/api/agent/${task.agent_id}/tasks/${task.id}/unblock`, { method: "POST", body });
    state.tasks.set(answered.task.id, { ...state.tasks.get(answered.task.id), ...answered.task });
    toast(`Answered “${task.title}”.`);
  } catch (error) {
    for (const control of controls) control.disabled = false;
    if (error.status === 401) return;
    toast(`Could not answer “${task.title}”: ${error.message}`, "error");
    if (error.status === 409 || error.status === 404) { // answered elsewhere, timed out, or gone
      const fresh = await api(path`/api/agent/${task.agent_id}/tasks/${task.id}`).catch(() => null);
      if (fresh) state.tasks.set(fresh.task.id, fresh.task);
      else state.tasks.delete(task.id);
    }
  }
  redraw("tasks", "agents");
}

async function markRead(notification) {
  try {
    const answer = await api(path`/api/notifications/${notification.id}/read`, { method: "POST" });
    state.notifications.set(answer.notification.id, answer.notification);
  } catch (error) {
    if (error.status !== 401) toast(`Could not mark it read: ${error.message}`, "error");
  }
  redraw("notifications");
}

async function markAllRead() {
  try {
    await api("/api/notifications/read", { method: "POST" });
    const at = new Date().toISOString();
    for (const [id, notification] of state.notifications) {
      if (!notification.read_at) state.notifications.set(id, { ...notification, read_at: at, read: true });
    }
  } catch (error) {
    if (error.status !== 401) toast(`Could not mark them read: ${error.message}`, "error");
  }
  redraw("notifications");
}

// Opening a notification (its link goes to what it is about) reads it and closes the panel.
function openNotification(notification) {
  showNotifications(false);
  if (!notification.read_at) markRead(notification);
}

// The card shows in its new column at once; Linear's refusal puts it back where it was.
async function moveCard(issueId, stateId) {
  const found = findCard(issueId);
  const target = state.board?.columns.find((column) => column.state.id === stateId);
  if (!found || !target || found.issue.state_id === stateId || state.movingIssues.has(issueId)) {
    redraw("board");
    return;
  }
  const { issue: original, index, column: from } = found;
  const name = original.identifier || original.title;
  removeCard(issueId);
  placeCard({ ...original, state_id: stateId, state_name: target.state.name }, target.issues.length);
  state.movingIssues.add(issueId);
  byId("board-message").textContent = "";
  redraw("board");
  try {
    const answer = await api("/api/linear/sync", { method: "POST", body: { issue_id: issueId, state_id: stateId } });
    removeCard(issueId);
    if (answer.issue && answer.issue.project_id === state.board?.project.id) placeCard(answer.issue);
  } catch (error) {
    removeCard(issueId);
    // Back to its place (the board may have been reloaded meanwhile: find its column again).
    const column = state.board?.columns.find((candidate) => candidate.state.id === original.state_id) ?? from;
    column.issues.splice(Math.min(index, column.issues.length), 0, original);
    if (error.status !== 401) {
      byId("board-message").textContent = `${name} could not move to ${target.state.name}, so it is back in `
        + `${from.state.name}. ${error.message}`;
    }
  } finally {
    state.movingIssues.delete(issueId);
  }
  redraw("board");
}

// Signing in and out -------------------------------------------------------------------------------------

let loadFallback = null;

function showDashboard(user) {
  state.user = user;
  byId("signin").hidden = true;
  byId("dashboard").hidden = false;
  const label = byId("user");
  label.replaceChildren(...[
    user?.avatar_url ? h("img", { src: user.avatar_url, alt: "", width: 20, height: 20, class: "avatar" }) : null,
    user?.login ?? "signed in"].filter(Boolean));
  ui.loaded = false;
  ui.route = null;
  showRoute();
  feed.start();
  // If the stream cannot open (say a proxy strips it), still show what there is.
  clearTimeout(loadFallback);
  loadFallback = setTimeout(() => { if (!ui.loaded && !ui.loading) loadAll(); }, LOAD_WITHOUT_STREAM_AFTER_MS);
}

function signedOut(note) {
  if (!byId("dashboard").hidden || byId("signin").hidden) {
    feed.stop();
    clearTimeout(loadFallback);
    clearTimeout(ui.retryTimer);
    clearState();
    ui.loaded = false;
    showSignIn({ note, onSignedIn: showDashboard });
  }
}

whenUnauthorized(() => signedOut("Your session has ended: sign in again."));

byId("signout").addEventListener("click", async () => {
  try {
    await api("/api/auth/logout", { method: "POST", expect401: true });
    signedOut("You have signed out.");
  } catch (error) {
    // 401: the session had ended already. Otherwise the server did not end it (the page cannot: the
    // cookie is HttpOnly), so say so rather than pretend.
    signedOut(error.status === 401 ? "You have signed out."
      : `The server could not end the session (${error.message}); sign out again once it is back.`);
  }
});

// Controls -----------------------------------------------------------------------------------------------

byId("project-select").addEventListener("change", (event) => {
  ui.selectedProjectId = event.currentTarget.value;
  localStorage.setItem("ocd.project", ui.selectedProjectId);
  byId("board-message").textContent = "";
  loadBoard();
});

byId("session-filter").addEventListener("change", (event) => {
  ui.selectedSessionId = event.currentTarget.value || null;
  redraw("activity", "sessions");
  showSessionUsage().catch(() => {});
});

// A search hit on a message or a todo opens its session's transcript, at the message.
setUpSearch({ onOpen: ({ sessionId, messageId }) => navigate(sessionLink(sessionId, messageId)) });
setUpTimeline();

const notificationsToggle = byId("notifications-toggle");
function showNotifications(open) {
  byId("notifications").hidden = !open;
  notificationsToggle.setAttribute("aria-expanded", String(open));
}
notificationsToggle.addEventListener("click", () => showNotifications(byId("notifications").hidden));
byId("notifications-read-all").addEventListener("click", markAllRead);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !byId("notifications").hidden) {
    showNotifications(false);
    notificationsToggle.focus();
  }
});

// "12 s ago" stays true while someone looks; a hidden tab does no work.
setInterval(() => { if (!document.hidden) refreshRelativeTimes(); }, RELATIVE_TIME_TICK_MS);
document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshRelativeTimes(); });

// Start --------------------------------------------------------------------------------------------------

// Who is signed in was asked by early.js (with a transcript's first page, at its address) while the
// modules loaded.
async function boot() {
  try {
    const { user } = await signedIn;
    showDashboard(user);
  } catch (error) {
    forgetEarly();
    showSignIn({ note: error.status === 401 || error.status === 404 ? null : error.message, onSignedIn: showDashboard });
  }
}

boot();
