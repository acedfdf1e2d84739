/**
 * Human in the loop, from the agent's side: a person answers through the OpenCode Dashboard and the
 * answer reaches the agent (docs/human-in-the-loop.md; for opencode's own prompts, docs/monitoring.md).
 *
 * Two ways in:
 *
 * - `promptRelay(client, opencode)` is what the opencode plugin uses. opencode's own prompts — a
 *   permission (`permission.asked`, `permission.v2.asked`) or a question (`question.asked`,
 *   `question.v2.asked`) — reach the dashboard as the events they are; the dashboard blocks the session's
 *   task with them, attached as its question. The relay then waits on the agent's inbox for that request
 *   (`GET /api/agent/{id}/inbox?wait=30&request_id=...` with the API key; the agent opens no port) and,
 *   when a person answers on the dashboard, answers opencode through the client opencode gave the plugin.
 *   Whichever answers first wins: when the terminal answers (`permission.replied`, `question.replied`,
 *   `question.rejected`, or their v2 names) the wait ends, and the dashboard, which saw the same event,
 *   refuses a later answer there (409).
 *
 * - `askDashboard(client, taskId, question)` is for any other agent or script: it reports its own task
 *   blocked with a question (a `task.updated`), long-polls the inbox for that task, acknowledges the entry
 *   and resolves with it: `{id, task_id, question_id, request_id, status: "answered"|"timed_out", answer,
 *   answered_by, answered_at}`.
 *
 * Network errors and a dashboard that is down are retried with the client's backoff for as long as it
 * takes (or until the wait is aborted).
 */

const QUESTION_TYPES = new Set(["question", "permission", "choice"]);
const WAIT_S = 30; // the dashboard's longest long poll
const RETRY_MS = 2_000; // after a refusal (say, the asking event not landed yet): look again this much later

const ASKED = new Set(["permission.asked", "permission.v2.asked", "question.asked", "question.v2.asked"]);
const SETTLED = new Set(["permission.replied", "permission.v2.replied", "question.replied", "question.v2.replied",
  "question.rejected", "question.v2.rejected"]);

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
  const inbox = inboxPath(agentId);
  const forTask = `task_id=${encodeURIComponent(taskId)}`;
  // Entries this task has before we ask answer earlier questions of it (say, an answer this process
  // never picked up before it restarted): they are not this question's answer, so they go.
  const earlier = await client.getJson(`${inbox}?wait=0&${forTask}`, { signal });
  for (const entry of earlier?.answers ?? []) await acknowledge(client, inbox, entry, signal);

  client.send("task.updated", { id: taskId, status: "blocked", question }, { agentId });
  // Not a condition of waiting: an event the dashboard cannot take yet is spooled and sent when it can,
  // and the answer can only come after that.
  await client.flush(10_000);
  const entry = await waitForEntry(client, inbox, forTask, { signal, waitS });
  if (!entry) throw new Error("askDashboard: aborted while waiting for the answer");
  return entry;
}

/**
 * Long-poll the inbox (`query` selects the entries) until an entry arrives, acknowledge it and return it;
 * null once `signal` aborts. A refusal (a 4xx) is logged and polled again later, so a wait that began
 * before the dashboard knew the agent still ends with the answer.
 */
async function waitForEntry(client, inbox, query, { signal, waitS = WAIT_S }) {
  while (!signal?.aborted) {
    let polled;
    try {
      polled = await client.getJson(`${inbox}?wait=${waitS}&${query}`, { signal, timeoutMs: (waitS + 15) * 1000 });
    } catch (error) {
      if (signal?.aborted) break;
      client.log(`waiting for an answer on the dashboard: ${error?.message ?? error}`);
      await client.sleep(RETRY_MS, signal, { keepAlive: true });
      continue;
    }
    const [entry] = polled?.answers ?? [];
    if (entry) {
      await acknowledge(client, inbox, entry, signal);
      return entry;
    }
  }
  return null;
}

async function acknowledge(client, inbox, entry, signal) {
  // At least once: if this fails for good the entry is simply returned again by the next poll.
  await client.requestJson("POST", `${inbox}/${entry.id}/ack`, { signal, attempts: 5 }).catch((error) => {
    client.log(`could not acknowledge inbox entry ${entry.id}: ${error?.message ?? error}`);
  });
}

function inboxPath(agentId) {
  return `/api/agent/${encodeURIComponent(agentId)}/inbox`;
}

// opencode's prompts ---------------------------------------------------------------------------------------

/**
 * Relays opencode's permission and question prompts to the dashboard and the person's answers back.
 * `seen(event)` takes every opencode bus event (after the plugin has sent it on); it returns at once —
 * opencode waits for a plugin's event hook, and a prompt may wait for hours. `pending` maps the request
 * ids waited on to their waits' promises (the tests await them).
 */
export function promptRelay(client, opencode, { agentId = client.config.agentId, waitS = WAIT_S } = {}) {
  const waits = new Map(); // request id -> AbortController of its wait
  const pending = new Map(); // request id -> the wait's promise
  return {
    pending,
    seen(event) {
      const properties = event?.properties ?? {};
      if (ASKED.has(event?.type) && properties.id && !waits.has(properties.id)) {
        const stop = new AbortController();
        waits.set(properties.id, stop);
        const wait = relay(client, opencode, event.type, properties, { agentId, waitS, signal: stop.signal })
          .catch((error) => client.log(`could not relay ${event.type} ${properties.id}: ${error?.message ?? error}`))
          .finally(() => {
            waits.delete(properties.id);
            pending.delete(properties.id);
          });
        pending.set(properties.id, wait);
      } else if (SETTLED.has(event?.type)) {
        waits.get(properties.requestID)?.abort(); // answered in the terminal: nothing to wait for
      }
    },
    /** Stop waiting on every prompt (the plugin is unloading). */
    stop() {
      for (const stop of waits.values()) stop.abort();
    },
  };
}

/** Wait for the dashboard's answer to one prompt and give it to opencode. */
async function relay(client, opencode, type, request, { agentId, waitS, signal }) {
  if (!agentId) return;
  await client.flush(10_000); // the prompt on the dashboard first; the answer can only follow it
  const query = `request_id=${encodeURIComponent(request.id)}`;
  const entry = await waitForEntry(client, inboxPath(agentId), query, { signal, waitS });
  if (!entry) return; // the terminal answered first
  if (entry.status !== "answered") {
    client.log(`nobody answered ${type} ${request.id} on the dashboard in time; it waits in opencode`);
    return;
  }
  const reply = type.startsWith("permission.")
    ? answerPermission(opencode, request, entry.answer?.permission ? "once" : "reject")
    : answerQuestion(opencode, request, questionAnswers(request, entry.answer));
  const outcome = await reply;
  if (outcome?.error !== undefined || (outcome?.response && !outcome.response.ok)) {
    // Most likely answered in the terminal at the same moment: opencode no longer knows the request.
    client.log(`opencode did not take the dashboard's answer to ${request.id}: ${describe(outcome)}`);
  }
}

/**
 * A permission's reply through the client opencode gives plugins (`@opencode-ai/sdk`'s OpencodeClient):
 * `permission.reply` where the client has it (the v2 client), else the v1 route every 1.x server keeps.
 */
function answerPermission(opencode, request, reply) {
  if (typeof opencode?.permission?.reply === "function") {
    return opencode.permission.reply({ requestID: request.id, reply });
  }
  return opencode.postSessionIdPermissionsPermissionId({
    path: { id: request.sessionID, permissionID: request.id }, body: { response: reply } });
}

/**
 * A question's answers. The v1 client has no method for `POST /question/{requestID}/reply`, so it goes
 * through the client's own request function (`_client.post`, what every generated method calls), with
 * the same base URL, directory and in-process fetch opencode set up.
 */
function answerQuestion(opencode, request, answers) {
  if (typeof opencode?.question?.reply === "function") {
    return opencode.question.reply({ requestID: request.id, answers });
  }
  return opencode._client.post({ url: "/question/{requestID}/reply", path: { requestID: request.id },
    body: { answers }, headers: { "Content-Type": "application/json" } });
}

/**
 * The dashboard's answer as opencode's `answers` (one list of labels per question asked). A choice is
 * the one question's label; a typed response answers the one question, or, when several were asked,
 * one line per question in order (docs/monitoring.md).
 */
export function questionAnswers(request, answer) {
  const count = Math.max(1, request.questions?.length ?? 1);
  if (typeof answer?.choice === "string") return [[answer.choice]];
  const text = typeof answer?.response === "string" ? answer.response : "";
  if (count === 1) return [[text.trim()]];
  const lines = text.split("\n").map((line) => line.trim());
  return Array.from({ length: count }, (_, index) => (lines[index] ? [lines[index]] : []));
}

function describe(outcome) {
  const status = outcome?.response?.status;
  const error = outcome?.error === undefined ? "" : JSON.stringify(outcome.error);
  return [status && `HTTP ${status}`, error].filter(Boolean).join(" ") || "no answer";
}
