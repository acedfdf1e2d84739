// What the page knows, and how each change from the feed updates it.
//
// `applyChange` returns the names of the views to draw again. Payloads are whole rows (an agent, a
// task, a message...) except where noted, so applying one is an upsert by id.

export const state = {
  user: null,
  agents: new Map(), // id -> agent
  tasks: new Map(), // id -> task
  sessions: new Map(), // id -> session
  messages: new Map(), // id -> message
  todos: new Map(), // session id -> [todo] (a session's whole list)
  notifications: new Map(), // id -> notification
  projects: new Map(), // id -> project
  board: null, // {project, columns: [{state, issues}]} of the selected project
  linearError: null, // why there is no board (Linear not configured, ...)
  movingIssues: new Set(), // card moves waiting for Linear: the feed must not move them meanwhile
};

export const MAX_MESSAGES = 200;

export function clearState() {
  for (const value of Object.values(state)) {
    if (value instanceof Map || value instanceof Set) value.clear();
  }
  state.board = null;
  state.linearError = null;
}

// Agents and tasks have `updated_at`: a change older than what a fresh load showed is not applied.
function newer(incoming, current) {
  return !current || !incoming.updated_at || !current.updated_at || incoming.updated_at >= current.updated_at;
}

function upsert(map, row, key = "id") {
  const current = map.get(row[key]);
  if (!newer(row, current)) return false;
  map.set(row[key], { ...current, ...row });
  return true;
}

const HANDLERS = {
  agent(action, payload) {
    // a heartbeat carries only {id, last_heartbeat}
    return upsert(state.agents, payload) ? ["agents"] : [];
  },
  task(action, payload) {
    return upsert(state.tasks, payload) ? ["tasks", "agents"] : [];
  },
  session(action, payload) {
    if (!payload.id) return []; // "asked" with no agent: only {session_id, reason}
    state.sessions.set(payload.id, { ...state.sessions.get(payload.id), ...payload });
    return ["sessions", "activity"];
  },
  message(action, payload) {
    if (action === "removed") {
      removeMessage(payload.external_id);
    } else if (action === "read") {
      for (const id of payload.ids) {
        const message = state.messages.get(id);
        if (message) message.read = 1;
      }
    } else {
      addMessage(payload);
    }
    return ["activity"];
  },
  error(action, payload) {
    if (payload.message) addMessage(payload.message);
    return ["activity"];
  },
  todo(action, payload) {
    state.todos.set(payload.session_id, payload.todos);
    return ["activity"];
  },
  notification(action, payload) {
    if (action === "read_many") { // all marked read, or a task's blocked ones settled: {ids, read_at}
      for (const id of payload.ids) {
        const notification = state.notifications.get(id);
        if (notification) state.notifications.set(id, { ...notification, read_at: payload.read_at, read: true });
      }
    } else {
      state.notifications.set(payload.id, payload);
    }
    return ["notifications"];
  },
  "linear.project"(action, payload) {
    if (action === "removed") state.projects.delete(payload.id);
    else state.projects.set(payload.id, { ...state.projects.get(payload.id), ...payload });
    if (state.board?.project.id === payload.id && action !== "removed") state.board.project = payload;
    return ["projects"];
  },
  "linear.issue"(action, payload) {
    if (!state.board || state.movingIssues.has(payload.id)) return [];
    const old = removeCard(payload.id)?.issue;
    if (action !== "removed" && payload.project_id === state.board.project.id) {
      // The feed's issue does not say who works on it; the board does (and is asked again when that changes).
      if (payload.agent_task_id && payload.agent_task_id !== old?.agent_task_id) return ["board-reload"];
      if (!placeCard({ ...payload, agent: old?.agent ?? null })) return ["board-reload"]; // no column for its state
    }
    return ["board"];
  },
  "linear.comment"(action, payload) {
    if (action === "removed") removeMessage(payload.external_id);
    else addMessage(payload);
    return ["activity"];
  },
  "linear.state"() {
    return state.board ? ["board-reload"] : [];
  },
};

export function applyChange(change) {
  const handler = HANDLERS[change.topic];
  return handler ? handler(change.action, change.payload ?? {}) : [];
}

export function addMessage(message) {
  state.messages.set(message.id, message);
  if (state.messages.size > MAX_MESSAGES) {
    const oldest = [...state.messages.values()].sort(byCreated)[0];
    state.messages.delete(oldest.id);
  }
}

function removeMessage(externalId) {
  for (const [id, message] of state.messages) {
    if (message.external_id === externalId) state.messages.delete(id);
  }
}

export function byCreated(a, b) {
  return (a.created_at ?? "").localeCompare(b.created_at ?? "") || a.id - b.id;
}

// The board ---------------------------------------------------------------------------------------------

export function findCard(issueId) {
  for (const column of state.board?.columns ?? []) {
    const index = column.issues.findIndex((issue) => issue.id === issueId);
    if (index >= 0) return { column, index, issue: column.issues[index] };
  }
  return null;
}

export function removeCard(issueId) {
  const found = findCard(issueId);
  if (found) found.column.issues.splice(found.index, 1);
  return found;
}

// Into its state's column, in Linear's sortOrder; false when the board has no such column.
export function placeCard(issue, index = null) {
  const column = state.board.columns.find((candidate) => candidate.state.id === issue.state_id);
  if (!column) return false;
  if (index === null) {
    index = column.issues.findIndex((other) => (other.sort_order ?? Infinity) > (issue.sort_order ?? Infinity));
    if (index < 0) index = column.issues.length;
  }
  column.issues.splice(index, 0, issue);
  return true;
}
