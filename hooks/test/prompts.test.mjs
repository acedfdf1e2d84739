/**
 * The prompt relay's parts that need no dashboard: how a dashboard answer becomes opencode's question
 * answers, and which events start and end a wait. Run by `node --test` from tests/test_hook_client.py;
 * the relay against a real dashboard is tested in tests/test_hook_questions.py.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { promptRelay, questionAnswers } from "../dashboard-questions.mjs";

const oneQuestion = { id: "que_1", questions: [{ question: "Which database?", options: [] }] };
const twoQuestions = { id: "que_2", questions: [{ question: "Which database?" }, { question: "Which features?" }] };

test("a choice answers the one question with its label", () => {
  assert.deepEqual(questionAnswers(oneQuestion, { choice: "SQLite" }), [["SQLite"]]);
});

test("a typed answer answers one question whole, or several one line each", () => {
  assert.deepEqual(questionAnswers(oneQuestion, { response: "  the staging one\n" }), [["the staging one"]]);
  assert.deepEqual(questionAnswers(twoQuestions, { response: "SQLite\n auth, billing \n extra" }),
    [["SQLite"], ["auth, billing"]]);
  assert.deepEqual(questionAnswers(twoQuestions, { response: "SQLite" }), [["SQLite"], []]);
});

/** A dashboard client that never answers: the relay's waits stay pending until they are ended. */
function silentClient() {
  const logged = [];
  return {
    logged,
    config: { agentId: "opencode-test" },
    log: (message) => logged.push(message),
    flush: async () => true,
    sleep: (ms, signal) => new Promise((resolve) => signal?.addEventListener("abort", resolve)),
    getJson: (path, { signal }) => new Promise((_, reject) => {
      signal?.addEventListener("abort", () => reject(new Error("aborted")));
    }),
    requestJson: async () => null,
  };
}

test("a prompt starts one wait, and the terminal's reply to it ends the wait without answering opencode", async () => {
  const calls = [];
  const opencode = { postSessionIdPermissionsPermissionId: async (request) => calls.push(request) };
  const relay = promptRelay(silentClient(), opencode);
  const asked = { type: "permission.asked", properties: { id: "per_1", sessionID: "ses_1", permission: "bash" } };
  relay.seen(asked);
  relay.seen(asked); // the same prompt seen twice is one wait
  relay.seen({ type: "session.status", properties: { sessionID: "ses_1", status: { type: "busy" } } });
  assert.deepEqual([...relay.pending.keys()], ["per_1"]);
  relay.seen({ type: "permission.replied", properties: { sessionID: "ses_1", requestID: "per_other", reply: "once" } });
  assert.equal(relay.pending.size, 1);
  const wait = relay.pending.get("per_1");
  relay.seen({ type: "permission.replied", properties: { sessionID: "ses_1", requestID: "per_1", reply: "once" } });
  await wait;
  assert.equal(relay.pending.size, 0);
  assert.deepEqual(calls, []);
});

test("v2 prompts and their replies are relayed alike", async () => {
  const relay = promptRelay(silentClient(), {});
  relay.seen({ type: "question.v2.asked", properties: { id: "que_9", sessionID: "ses_1", questions: [] } });
  const wait = relay.pending.get("que_9");
  assert.ok(wait);
  relay.seen({ type: "question.v2.rejected", properties: { sessionID: "ses_1", requestID: "que_9" } });
  await wait;
  assert.equal(relay.pending.size, 0);
});
