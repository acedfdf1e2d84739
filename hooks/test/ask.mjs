/**
 * Asks the dashboard one question the way an agent does, for the Python tests (tests/test_hook_questions.py):
 * `node hooks/test/ask.mjs '<plan as JSON>'`, the connection settings from the environment as in opencode.
 *
 * The plan is {"client": {...DashboardClient options}, "ask": [taskId, question]}: askDashboard(client,
 * taskId, question), whose entry is the result. Once it is asking, one line `{"asking": true}` goes to
 * stdout; at the end one JSON line {result, elapsedMs}. (The plugin's relay of opencode's own prompts is
 * driven by plugin.mjs.)
 */

import { DashboardClient } from "../dashboard-client.mjs";
import { askDashboard } from "../dashboard-questions.mjs";

const plan = JSON.parse(process.argv[2]);
const client = new DashboardClient(plan.client ?? {});
const started = Date.now();
process.stdout.write(`${JSON.stringify({ asking: true })}\n`);
const result = await askDashboard(client, ...plan.ask);
await client.close(5_000);
process.stdout.write(`${JSON.stringify({ result, elapsedMs: Date.now() - started })}\n`);
