// The raw timeline (GET /api/timeline, with its filters) and the events-per-minute chart
// (GET /api/activity), drawn as SVG here. Both follow the live feed: any change asks for a refresh,
// at most one a second.

import { api } from "./api.js";
import { byId, h, replaceKeepingFocus, timeElement, truncate } from "./dom.js";

const EVENTS_SHOWN = 50;
const REFRESH_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const HEIGHT = 150;
const PAD = { left: 30, right: 8, top: 8, bottom: 18 };
const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#b26a00", "#8250df", "#0a7ea4", "#bf3989", "#57606a"];

const filters = { agent_id: "", session_id: "", type: "" };
const seenTypes = new Set();
let timer = null;

export function setUpTimeline() {
  for (const [name, id] of [["agent_id", "timeline-agent"], ["session_id", "timeline-session"], ["type", "timeline-type"]]) {
    byId(id).addEventListener("change", (event) => {
      filters[name] = event.currentTarget.value;
      loadTimeline();
    });
  }
}

// The agent and session filters offer what the page knows of.
export function renderTimelineFilters({ agents, sessions }) {
  fill(byId("timeline-agent"), [...agents.keys()].sort(), filters.agent_id);
  fill(byId("timeline-session"), [...sessions.keys()].sort(), filters.session_id);
  fill(byId("timeline-type"), [...seenTypes].sort(), filters.type);
}

function fill(select, values, selected) {
  if (selected && !values.includes(selected)) values.unshift(selected);
  select.replaceChildren(h("option", { value: "" }, "All"),
    ...values.map((value) => h("option", { value, selected: value === selected }, value)));
  select.value = selected;
}

// A change arrived on the feed: the timeline and the chart are asked again, once for a burst.
export function timelineChanged() {
  timer ??= setTimeout(() => {
    timer = null;
    if (!document.hidden) refreshTimeline();
  }, REFRESH_MS);
}

export function refreshTimeline() {
  return Promise.all([loadTimeline(), loadActivity()]);
}

async function loadTimeline() {
  const query = new URLSearchParams({ limit: String(EVENTS_SHOWN) });
  for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
  try {
    const { events } = await api(`/api/timeline?${query}`);
    for (const event of events) seenTypes.add(event.type);
    if (!byId("timeline-type").value) fill(byId("timeline-type"), [...seenTypes].sort(), filters.type);
    replaceKeepingFocus(byId("timeline-list"), events.length ? events.map(eventItem)
      : [h("li", { class: "empty" }, "No events.")]);
  } catch (error) {
    if (error.status !== 401) byId("timeline-list").replaceChildren(h("li", { class: "error" }, error.message));
  }
}

function eventItem(event) {
  return h("li", { class: "timeline-event", dataset: { eventId: event.id, type: event.type } },
    h("div", { class: "message-meta muted" },
      h("span", { class: "badge" }, event.type),
      event.agent_id ? h("span", {}, event.agent_id) : null,
      event.session_id ? h("span", {}, event.session_id) : null,
      timeElement(event.received_at)),
    h("div", { class: "message-content" }, truncate(summary(event), 200)));
}

function summary(event) {
  const data = event.data ?? {};
  const text = data.part?.text ?? data.info?.title ?? data.title ?? data.output ?? data.status?.type ?? data.status;
  return typeof text === "string" ? text : JSON.stringify(data);
}

// The chart -----------------------------------------------------------------------------------------------

async function loadActivity() {
  try {
    drawActivity(await api("/api/activity?bucket=1m"));
  } catch (error) {
    if (error.status !== 401) byId("activity-legend").replaceChildren(h("li", { class: "error" }, error.message));
  }
}

function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

// One line per agent over the last hour's minutes (a missing minute is 0), a legend with each total.
export function drawActivity({ since, bucket_s: width, agents }) {
  const chart = byId("activity-chart");
  const start = Date.parse(since);
  const buckets = Math.max(1, Math.round((Date.now() - start) / 1000 / width));
  const series = agents.map(({ agent_id: agentId, buckets: counts }) => {
    const values = new Array(buckets).fill(0);
    for (const { at, events } of counts) {
      const index = Math.floor((Date.parse(at) - start) / 1000 / width);
      if (index >= 0 && index < buckets) values[index] += events;
    }
    return { agentId: agentId ?? "(no agent)", values, total: counts.reduce((sum, count) => sum + count.events, 0) };
  });
  const top = Math.max(1, ...series.flatMap((line) => line.values));
  const x = (index) => PAD.left + (index / Math.max(1, buckets - 1)) * (WIDTH - PAD.left - PAD.right);
  const y = (value) => HEIGHT - PAD.bottom - (value / top) * (HEIGHT - PAD.top - PAD.bottom);
  const title = chart.querySelector("title");
  chart.replaceChildren(title,
    svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), class: "axis" }),
    svg("text", { x: PAD.left - 4, y: y(top) + 4, "text-anchor": "end", class: "axis-label" }, String(top)),
    svg("text", { x: PAD.left - 4, y: y(0), "text-anchor": "end", class: "axis-label" }, "0"),
    svg("text", { x: PAD.left, y: HEIGHT - 4, class: "axis-label" }, "1 h ago"),
    svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 4, "text-anchor": "end", class: "axis-label" }, "now"),
    ...series.map((line, index) => svg("polyline", {
      points: line.values.map((value, i) => `${x(i).toFixed(1)},${y(value).toFixed(1)}`).join(" "),
      fill: "none", stroke: COLOURS[index % COLOURS.length], "stroke-width": 2, "data-agent": line.agentId,
      "data-total": line.total,
    }, svg("title", {}, `${line.agentId}: ${line.total} events`))));
  byId("activity-legend").replaceChildren(...(series.length ? series.map((line, index) => h("li", {
    dataset: { agent: line.agentId },
  }, svg("svg", { width: 10, height: 10, "aria-hidden": "true" },
    svg("rect", { width: 10, height: 10, fill: COLOURS[index % COLOURS.length] })),
  ` ${line.agentId}: ${line.total}`)) : [h("li", { class: "empty" }, "No events in the last hour.")]));
}
