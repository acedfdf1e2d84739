/**
 * Human in the loop, from the agent's side: ask a person through the OpenCode Dashboard and wait for the
 * answer (docs/human-in-the-loop.md).
 *
 * `askDashboard(client, taskId, question)` reports the task blocked with the question (a `task.updated`
 * through the DashboardClient, so it is batched, retried and spooled like every event), then long-polls
 * the agent's inbox — `GET /api/agent/{id}/inbox?wait=30&task_id=...` with the API key; the agent opens no
 * port — until the person's answer, or word that the question timed out, arrives. It acknowledges that
 * entry and resolves with it: `{id, task_id, question_id, status: "answered"|"timed_out", answer,
 * answered_by, answered_at}`. Network errors and a dashboard that is down are retried with the client's
 * backoff for as long as it takes (or until `signal` aborts).
 *
 * `questionHooks(client)` wires that into opencode: its `permission.ask` hook puts opencode's permission
 * prompts to the dashboard for the task named by DASHBOARD_TASK_ID and answers opencode with the person's
 * allow / deny. Without DASHBOARD_TASK_ID, or when the question times out or the dashboard fails, it
 * leaves the prompt to opencode as if the hook were not there.
 */

const QUESTION_TYPES = new Set(["question", "permission", "choice"]);
const WAIT_S = 30; // the dashboard's longest long poll

/**
 * Ask and wait. `question` is `{type, text, choices?, timeout_s?}` (the ingest contract's). Options:
 * `agentId` (default the client's DASHBOARD_AGENT_ID), `signal` (an AbortSignal that ends the wait),
 * `waitS` (each long poll's length, at most 30).
 */
export async function askDashboard(client, taskId, question, { agentId = client.config.agentId, signal,
  waitS = WAIT_S } = {}) {
  if (!agentId) throw new Error("askDashboard needs the agent's id (DASHBOARD_AGENT_ID)");
  if (!taskId) throw new Error("askDashboard needs the id of the task that waits on the answer");
  if (!QUESTION_TYPES.has(question?.type)) throw new Error(`a question's type is one of ${[...QUESTION_TYPES]}`);
  const inbox = `/api/agent/${encodeURIComponent(agentId)}/inbox`;
  const forTask = `task_id=${encodeURIComponent(taskId)}`;
  // Entries this task has before we ask answer earlier questions of it (say, an answer this process
  // never picked up before it restarted): they are not this question's answer, so they go.
  const earlier = await client.getJson(`${inbox}?wait=0&${forTask}`, { signal });
  for (const entry of earlier?.answers ?? []) await acknowledge(client, inbox, entry, signal);

  client.send("task.updated", { id: taskId, status: "blocked", question }, { agentId });
  // Not a condition of waiting: an event the dashboard cannot take yet is spooled and sent when it can,
  // and the answer can only come after that.
  await client.flush(10_000);

  for (;;) {
    const polled = await client.getJson(`${inbox}?wait=${waitS}&${forTask}`,
      { signal, timeoutMs: (waitS + 15) * 1000 });
    const [entry] = polled?.answers ?? [];
    if (entry) {
      await acknowledge(client, inbox, entry, signal);
      return entry;
    }
    if (signal?.aborted) throw new Error("askDashboard: aborted while waiting for the answer");
  }
}

async function acknowledge(client, inbox, entry, signal) {
  // At least once: if this fails for good the entry is simply returned again by the next poll.
  await client.requestJson("POST", `${inbox}/${entry.id}/ack`, { signal, attempts: 5 }).catch((error) => {
    client.log(`could not acknowledge inbox entry ${entry.id}: ${error?.message ?? error}`);
  });
}

/** How a permission prompt reads on the dashboard. */
export function permissionText(permission) {
  const what = permission?.title || permission?.type || "an action";
  const pattern = Array.isArray(permission?.pattern) ? permission.pattern.join(", ") : permission?.pattern;
  return (pattern ? `${what} (${pattern})` : String(what)).slice(0, 2000);
}

/** opencode hooks that put questions to the dashboard; see the module's comment. */
export function questionHooks(client, { env = process.env, ask = askDashboard } = {}) {
  const taskId = env.DASHBOARD_TASK_ID;
  if (!taskId) return {};
  const timeout = Number(env.DASHBOARD_QUESTION_TIMEOUT_S);
  const timeoutS = Number.isInteger(timeout) && timeout > 0 ? timeout : undefined;
  return {
    "permission.ask": async (permission, output) => {
      if (output?.status !== undefined && output.status !== "ask") return; // decided already by the config
      try {
        const question = { type: "permission", text: permissionText(permission) };
        if (timeoutS) question.timeout_s = timeoutS;
        const entry = await ask(client, taskId, question);
        if (entry.status === "answered") output.status = entry.answer?.permission ? "allow" : "deny";
        else client.log(`nobody answered "${question.text}" in time on the dashboard; opencode asks instead`);
      } catch (error) {
        client.log(`could not ask the dashboard (${error?.message ?? error}); opencode asks instead`);
      }
    },
  };
}
