// The Linear kanban of one project: a header with the project's status, progress and production URL, then
// a column per workflow state, cards in Linear's order (estimate, labels, assignee, the agent on it).
//
// A card moves by drag-and-drop (or, from the keyboard, with its "Move to" list). The move shows at
// once; the dashboard then asks Linear (POST /api/linear/sync), and if Linear refuses the card goes back
// where it was, with the reason shown above the board.

import { byId, h, replaceKeepingFocus } from "./dom.js";

const CARD_TYPE = "application/x-linear-issue";

export function renderProjects(select, { projects }, selectedId) {
  const sorted = [...projects.values()].sort((a, b) => a.name.localeCompare(b.name));
  select.replaceChildren(...sorted.map((project) =>
    h("option", { value: project.id, selected: project.id === selectedId }, `${project.name}${
      project.issue_count !== undefined ? ` (${project.issue_count})` : ""}`)));
  byId("project-picker").hidden = sorted.length === 0; // nothing to pick (Linear not configured, say)
  if (selectedId) select.value = selectedId;
}

// The project that moved last comes first: the board opens on it unless the person picked another.
export function busiestProject(projects) {
  const latest = (project) => project.last_activity_at ?? project.updated_at ?? "";
  return [...projects].sort((a, b) => latest(b).localeCompare(latest(a)) || a.name.localeCompare(b.name))[0];
}

export function renderProjectHeader(container, { board }, { onSaveProdUrl }) {
  if (!board) {
    container.replaceChildren();
    return;
  }
  const { project } = board;
  const percent = project.progress === null || project.progress === undefined ? null
    : Math.round(project.progress * 100);
  const editor = prodUrlEditor(project, onSaveProdUrl);
  replaceKeepingFocus(container, [
    project.status_name || project.state
      ? h("span", { class: `project-status project-state-${project.state ?? "unknown"}` },
        project.status_name || project.state) : null,
    percent === null ? null : h("span", { class: "project-progress" },
      h("progress", { max: "100", value: String(percent), "aria-label": "Project progress" }), `${percent}%`),
    project.url ? h("a", { href: project.url, target: "_blank", rel: "noopener noreferrer" }, "Open in Linear") : null,
    editor,
  ]);
}

function prodUrlEditor(project, onSaveProdUrl) {
  const form = h("form", { class: "prod-url", "aria-label": "Production URL of the project" },
    project.prod_url
      ? h("a", { href: project.prod_url, target: "_blank", rel: "noopener noreferrer", class: "prod-link" },
        "Production")
      : h("span", { class: "muted" }, "No production URL"),
    h("button", { type: "button", class: "link-button", dataset: { focusKey: "prod-url-edit" },
      onclick: () => { form.classList.add("editing"); form.querySelector("input").focus(); } }, "Edit"),
    h("label", { class: "visually-hidden", for: "prod-url-input" }, "Production URL"),
    h("input", { id: "prod-url-input", type: "url", placeholder: "https://…", value: project.prod_url ?? "",
      dataset: { focusKey: "prod-url-input" } }),
    h("button", { type: "submit" }, "Save"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = form.querySelector("input").value.trim();
    onSaveProdUrl(project.id, value === "" ? null : value);
  });
  return form;
}

export function renderBoard(container, { board, linearError, movingIssues }, { onMove }) {
  if (!board) {
    replaceKeepingFocus(container, [h("p", { class: "empty" }, linearError || "No Linear project yet.")]);
    return;
  }
  const columns = board.columns.map((column) => columnElement(column, board.columns, movingIssues, onMove));
  replaceKeepingFocus(container, columns.length ? columns : [h("p", { class: "empty" }, "This project has no columns.")]);
}

function columnElement(column, allColumns, movingIssues, onMove) {
  const { state } = column;
  const element = h("section", { class: "column", dataset: { stateId: state.id ?? "", stateType: state.type ?? "" },
    "aria-label": `${state.name} column` },
  h("h3", {}, h("span", { class: "state-dot", "aria-hidden": "true" }), state.name,
    h("span", { class: "count-inline" }, String(column.issues.length))),
  h("ul", { class: "cards" }, column.issues.map((issue) => card(issue, allColumns, movingIssues.has(issue.id), onMove))));
  if (state.color) element.style.setProperty("--state-color", state.color);
  // Dropping: any column of the board takes a card (the server checks the state belongs to its team).
  element.addEventListener("dragover", (event) => {
    if (!event.dataTransfer.types.includes(CARD_TYPE) || !state.id) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
    element.classList.add("drop-target");
  });
  element.addEventListener("dragleave", (event) => {
    if (!element.contains(event.relatedTarget)) element.classList.remove("drop-target");
  });
  element.addEventListener("drop", (event) => {
    event.preventDefault();
    element.classList.remove("drop-target");
    const issueId = event.dataTransfer.getData(CARD_TYPE);
    if (issueId && state.id) onMove(issueId, state.id);
  });
  return element;
}

function card(issue, allColumns, moving, onMove) {
  const targets = allColumns.filter((column) => column.state.id && (!issue.team_id || !column.state.team_id
    || column.state.team_id === issue.team_id));
  const name = issue.identifier || issue.id;
  const element = h("li", { class: `card${moving ? " moving" : ""}`, draggable: "true",
    dataset: { issueId: issue.id }, "aria-busy": moving ? "true" : null },
  h("div", { class: "card-head" },
    issue.url ? h("a", { href: issue.url, target: "_blank", rel: "noopener noreferrer", class: "identifier" }, name)
      : h("span", { class: "identifier" }, name),
    issue.priority_label && issue.priority ? h("span", { class: `priority linear-priority-${issue.priority}` },
      issue.priority_label) : null),
  h("div", { class: "card-title" }, issue.title),
  issue.label_names?.length ? h("ul", { class: "labels", "aria-label": "Labels" },
    issue.label_names.map((label) => h("li", { class: "label" }, label))) : null,
  issue.agent ? h("div", { class: `card-agent status-${issue.agent.status}` },
    h("span", { class: "visually-hidden" }, "Agent on it: "), issue.agent.name, ` · ${issue.agent.task_status}`) : null,
  h("div", { class: "card-foot" },
    assignee(issue),
    issue.estimate !== null && issue.estimate !== undefined
      ? h("span", { class: "estimate", title: "Estimate" }, `${issue.estimate} pt${issue.estimate === 1 ? "" : "s"}`)
      : null,
    h("label", { class: "visually-hidden", for: `move-${issue.id}` }, `Move ${name} to`),
    h("select", { id: `move-${issue.id}`, class: "move", disabled: moving, dataset: { focusKey: `move:${issue.id}` },
      onchange: (event) => onMove(issue.id, event.currentTarget.value) },
    targets.map((column) => h("option", { value: column.state.id, selected: column.state.id === issue.state_id },
      column.state.name)))));
  element.addEventListener("dragstart", (event) => {
    event.dataTransfer.setData(CARD_TYPE, issue.id);
    event.dataTransfer.setData("text/plain", name);
    event.dataTransfer.effectAllowed = "move";
    element.classList.add("dragging");
    document.body.classList.add("dragging-card");
  });
  element.addEventListener("dragend", () => {
    element.classList.remove("dragging");
    document.body.classList.remove("dragging-card");
    document.dispatchEvent(new CustomEvent("card-drag-ended"));
  });
  return element;
}

function assignee(issue) {
  if (!issue.assignee_name) return h("span", { class: "muted assignee" }, "unassigned");
  const initials = issue.assignee_name.split(/\s+/).map((word) => word[0]).join("").slice(0, 2).toUpperCase();
  const badge = h("span", { class: "avatar", "aria-hidden": "true" }, initials);
  if (issue.assignee_avatar) {
    // Linear's picture covers the initials; if it cannot load, the initials stay.
    const picture = h("img", { src: issue.assignee_avatar, alt: "", referrerpolicy: "no-referrer" });
    picture.addEventListener("error", () => picture.remove(), { once: true });
    badge.append(picture);
  }
  return h("span", { class: "assignee" }, badge, h("span", { class: "muted" }, issue.assignee_name));
}
