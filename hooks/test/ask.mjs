/**
 * Asks the dashboard one question the way an agent does, for the Python tests (tests/test_hook_questions.py):
 * `node hooks/test/ask.mjs '<plan as JSON>'`, the connection settings from the environment as in opencode.
 *
 * The plan is {"client": {...DashboardClient options}, and one of
 *   "ask": [taskId, question]        askDashboard(client, taskId, question): its entry is the result
 *   "permission": {...permission}    the plugin's `permission.ask` hook (questionHooks; DASHBOARD_TASK_ID
 *                                    from the environment) with output {status: "ask"}: the output is the result
 * }. Once it is asking, one line `{"asking": true}` goes to stdout; at the end one JSON line
 * {result, elapsedMs}.
 */

import { DashboardClient } from "../dashboard-client.mjs";
import { askDashboard, questionHooks } from "../dashboard-questions.mjs";

const plan = JSON.parse(process.argv[2]);
const client = new DashboardClient(plan.client ?? {});
const started = Date.now();
process.stdout.write(`${JSON.stringify({ asking: true })}\n`);
let result;
if (plan.ask) {
  result = await askDashboard(client, ...plan.ask);
} else {
  const hooks = questionHooks(client);
  result = { status: "ask" };
  await hooks["permission.ask"](plan.permission, result);
}
await client.close(5_000);
process.stdout.write(`${JSON.stringify({ result, elapsedMs: Date.now() - started })}\n`);
