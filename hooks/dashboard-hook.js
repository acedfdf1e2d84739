/**
 * The opencode plugin that reports an agent's work to the OpenCode Dashboard.
 *
 * It forwards opencode's own bus events (sessions, messages and their parts, todos, permissions and
 * questions, file edits) and the tool hooks to `POST /api/events`, in the ingest contract's shape
 * (docs/events.md: an opencode kind's `data` is the event's `properties`, unchanged). Delivery — batching,
 * retries, the on-disk spool — is dashboard-client.mjs's job; this file only maps.
 *
 * opencode calls every export of a plugin file as a plugin (and refuses the file if one is not a
 * function), so `DashboardHook` is the only export.
 *
 * Install: copy this file and the modules it imports (dashboard-*.mjs) into `~/.config/opencode/plugin/`
 * (every project) or a project's `.opencode/plugin/`, as the README's "Connect opencode" says; opencode
 * loads `*.js` there by itself and, the modules being `.mjs`, does not take them for more plugins.
 * Configuration is the environment: see docs/opencode-plugin.md.
 *
 * JavaScript rather than TypeScript: opencode (Bun) loads either, and plain JS also runs under the
 * Node 20 the tests use, with no compiler to install.
 */

import { basename } from "node:path";

import { DashboardClient } from "./dashboard-client.mjs";
import { promptRelay } from "./dashboard-questions.mjs";

/** opencode bus events sent on, under the same name. Others (tui.*, lsp.*, installation.*) are not. */
const FORWARDED = new Set([
  "session.created", "session.updated", "session.deleted", "session.idle", "session.error", "session.status",
  "session.diff", "session.compacted", "command.executed",
  "message.updated", "message.removed", "message.part.updated", "message.part.removed",
  "todo.updated", "file.edited",
  "permission.asked", "permission.replied", "permission.v2.asked", "permission.v2.replied",
  "question.asked", "question.replied", "question.rejected",
  "question.v2.asked", "question.v2.replied", "question.v2.rejected",
]);

/** Older opencode releases name the permission request `permission.updated`; the dashboard knows it as asked. */
const RENAMED = { "permission.updated": "permission.asked" };

const TOOL_OUTPUT_MAX_CHARS = 8_000; // a file read's whole output belongs in opencode, not in every event

/**
 * A newer snapshot of the same thing replaces one still waiting to be sent: a streamed text part is
 * updated many times a second, and only its latest state matters to the dashboard.
 */
function snapshotKey(type, properties) {
  const key = snapshotOf(type, properties);
  return key === undefined ? undefined : `${type}:${key}`;
}

/** What an event is a whole snapshot of (opencode's types: each of these carries the thing entire). */
function snapshotOf(type, properties) {
  switch (type) {
    case "message.part.updated":
      return properties?.part?.id;
    case "message.updated": // `info` is the whole Message (v1 and v2), not a change to it
    case "session.updated":
      return properties?.info?.id;
    case "session.status":
    case "session.diff":
    case "todo.updated":
      return properties?.sessionID;
    default:
      return undefined;
  }
}

/** The dashboard's agent id for this opencode: DASHBOARD_AGENT_ID, else `opencode-<project folder>`. */
function agentIdFor({ worktree, directory } = {}, env = process.env) {
  if (env.DASHBOARD_AGENT_ID) return env.DASHBOARD_AGENT_ID;
  const folder = basename(worktree || directory || "") || "agent";
  return `opencode-${folder}`.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 128);
}

/**
 * The hooks, over a client. `prompts` (a promptRelay) is shown every event after it is sent on: a
 * permission or question prompt waits there for an answer from the dashboard.
 */
function dashboardHooks(client, prompts, log = (message) => console.error(`[dashboard-hook] ${message}`)) {
  const safely = (what, work) => {
    try {
      work();
    } catch (error) {
      log(`could not report ${what}: ${error?.message ?? error}`); // never break the agent over the dashboard
    }
  };
  return {
    event: async ({ event }) => safely(event?.type, () => {
      const type = RENAMED[event?.type] ?? event?.type;
      if (!FORWARDED.has(type)) return;
      const properties = event.properties ?? {};
      // opencode 1.18.33 sends `"diff": []` about ten times a session, whatever it wrote: nothing to tell.
      if (type === "session.diff" && !properties.diff?.length) return;
      client.send(type, properties, { coalesceKey: snapshotKey(type, properties) });
      prompts?.seen({ type, properties });
    }),
    "tool.execute.before": async (input, output) => safely("tool.execute.before", () => {
      const data = { tool: input.tool, sessionID: input.sessionID, callID: input.callID };
      if (output?.args && typeof output.args === "object") data.args = output.args;
      client.send("tool.execute.before", data);
    }),
    "tool.execute.after": async (input, output) => safely("tool.execute.after", () => {
      const data = { tool: input.tool, sessionID: input.sessionID, callID: input.callID };
      if (typeof output?.title === "string") data.title = output.title;
      if (typeof output?.output === "string") data.output = truncate(output.output, TOOL_OUTPUT_MAX_CHARS);
      client.send("tool.execute.after", data);
    }),
  };
}

function truncate(text, max) {
  return text.length <= max ? text : `${text.slice(0, max)}\n… (${text.length - max} more characters)`;
}

const LOADED = Symbol.for("opencode-dashboard.hook");
const PROMPTS = Symbol.for("opencode-dashboard.prompts"); // the prompt relay, for tests to watch

/** @type {import("@opencode-ai/plugin").Plugin} */
export const DashboardHook = async ({ client: opencode, directory, worktree }) => {
  // Installed both globally and in the project, opencode would load it twice and every event would be
  // reported twice under different ids: the second copy stands down.
  if (globalThis[LOADED]) return {};
  const client = new DashboardClient({ agentId: agentIdFor({ worktree, directory }) });
  globalThis[LOADED] = client;
  // opencode's permission and question prompts can be answered from the dashboard too (promptRelay):
  // opencode 1.x never calls the `permission.ask` hook, so they are taken from the events.
  const prompts = opencode ? promptRelay(client, opencode) : null;
  globalThis[PROMPTS] = prompts;
  return dashboardHooks(client, prompts);
};
