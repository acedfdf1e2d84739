// The usage panel: cost and tokens today and this week, per agent and per model (GET /api/usage).

import { api, path } from "./api.js";
import { byId, h } from "./dom.js";

const TOKEN_FIGURES = ["input", "output", "reasoning", "cache_read", "cache_write"];

export function startOfToday(now = new Date()) {
  return new Date(now.getFullYear(), now.getMonth(), now.getDate());
}

// The week starts on Monday, at midnight where the page is.
export function startOfWeek(now = new Date()) {
  const today = startOfToday(now);
  return new Date(today.getFullYear(), today.getMonth(), today.getDate() - ((today.getDay() + 6) % 7));
}

export function tokens(figures) {
  return TOKEN_FIGURES.reduce((sum, name) => sum + (figures[name] ?? 0), 0);
}

export function formatCost(cost) {
  return `$${cost < 10 ? cost.toFixed(cost && cost < 0.01 ? 4 : 2) : cost.toFixed(0)}`;
}

export function formatTokens(count) {
  if (count >= 1e6) return `${(count / 1e6).toFixed(1)}M`;
  if (count >= 1e4) return `${Math.round(count / 1e3)}k`;
  return String(count);
}

async function usage(groupBy, since) {
  return api(`/api/usage?group_by=${groupBy}&since=${encodeURIComponent(since.toISOString())}`);
}

export async function loadUsage() {
  const today = startOfToday();
  const week = startOfWeek();
  const [agentsToday, agentsWeek, modelsToday, modelsWeek] = await Promise.all([
    usage("agent", today), usage("agent", week), usage("model", today), usage("model", week)]);
  byId("usage-panel").replaceChildren(
    h("dl", { class: "usage-totals" },
      h("dt", {}, "Today"), h("dd", { dataset: { period: "today" } }, summary(agentsToday.totals)),
      h("dt", {}, "This week"), h("dd", { dataset: { period: "week" } }, summary(agentsWeek.totals))),
    table("Agent", "agent", agentsToday.groups, agentsWeek.groups),
    table("Model", "model", modelsToday.groups, modelsWeek.groups));
}

export function summary(totals) {
  return `${formatCost(totals.cost)} · ${formatTokens(tokens(totals))} tokens · ${totals.messages} messages`;
}

// One row per agent (or model) seen this week: today's and the week's cost and tokens.
function table(label, kind, today, week) {
  const todayByKey = new Map(today.map((group) => [group.key, group]));
  const rows = week.map((group) => {
    const day = todayByKey.get(group.key);
    return h("tr", { dataset: { usageKey: group.key ?? "" } },
      h("th", { scope: "row" }, group.key ?? "(none)"),
      h("td", {}, day ? formatCost(day.cost) : "—"), h("td", {}, day ? formatTokens(tokens(day)) : "—"),
      h("td", {}, formatCost(group.cost)), h("td", {}, formatTokens(tokens(group))));
  });
  return h("table", { class: `usage-table usage-${kind}` },
    h("caption", {}, `By ${label.toLowerCase()}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, label), h("th", { scope: "col" }, "Cost today"),
      h("th", { scope: "col" }, "Tokens today"), h("th", { scope: "col" }, "Cost this week"),
      h("th", { scope: "col" }, "Tokens this week"))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No usage this week."))));
}

// A session's own figures, shown over its transcript.
export async function sessionUsage(sessionId) {
  const { totals } = await api(path`/api/usage?group_by=model&session_id=${sessionId}`);
  return totals.messages ? `This session: ${summary(totals)}` : "";
}
