// Markdown as agents write it (headings, lists, quotes, tables, fenced code, emphasis, code spans, links),
// built with h() and text nodes only: whatever a message says, it never becomes markup or script. HTML in
// the text stays text; a link is kept only when it goes to http(s) or mailto.
//
// The parser is a single pass over lines, and inline spans are found with forward searches that are
// never repeated once they fail, so even a huge or hostile message takes time in proportion to its size.

import { h } from "./dom.js";

const SAFE_LINK = /^(https?:\/\/|mailto:)/i;
const MAX_DEPTH = 6; // quotes and lists nest at most this deep; deeper, the text is shown as it is

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const ITEM = /^([ \t]*)([-*+]|\d{1,9}[.)])[ \t]+/;
const TABLE_DIVIDER = /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

export function markdown(source) {
  const lines = String(source ?? "").replace(/\r\n?/g, "\n").split("\n");
  return h("div", { class: "markdown" }, blocks(lines, 0));
}

function blocks(lines, depth) {
  const out = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    let match;
    if (!line.trim()) {
      i += 1;
    } else if ((match = line.match(FENCE))) {
      const fence = match[1];
      const body = [];
      for (i += 1; i < lines.length && !lines[i].trimStart().startsWith(fence); i += 1) body.push(lines[i]);
      i += 1; // the closing fence (or the end of the message)
      out.push(codeBlock(body.join("\n"), match[2]));
    } else if ((match = line.match(HEADING))) {
      out.push(h(`h${match[1].length + 2 > 6 ? 6 : match[1].length + 2}`, { class: "md-heading" }, inline(match[2])));
      i += 1;
    } else if (RULE.test(line)) {
      out.push(h("hr"));
      i += 1;
    } else if (isTable(lines, i)) {
      i = table(lines, i, out);
    } else if (QUOTE.test(line) && depth < MAX_DEPTH) {
      const quoted = [];
      for (; i < lines.length && QUOTE.test(lines[i]); i += 1) quoted.push(lines[i].replace(QUOTE, ""));
      out.push(h("blockquote", {}, blocks(quoted, depth + 1)));
    } else if (ITEM.test(line) && depth < MAX_DEPTH) {
      i = list(lines, i, depth, out);
    } else {
      const paragraph = [line];
      for (i += 1; i < lines.length && lines[i].trim() && !startsBlock(lines, i); i += 1) paragraph.push(lines[i]);
      out.push(h("p", {}, inline(paragraph.join("\n"))));
    }
  }
  return out;
}

function startsBlock(lines, i) {
  const line = lines[i];
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || ITEM.test(line)
    || isTable(lines, i);
}

function codeBlock(code, language) {
  return h("figure", { class: "code-block" },
    h("figcaption", {}, language || "code"),
    h("pre", {}, h("code", { dataset: language ? { language } : {} }, code)));
}

// A list: its items, each the item's first line and the lines indented under it (which may hold a list).
function list(lines, i, depth, out) {
  const first = lines[i].match(ITEM);
  const ordered = /\d/.test(first[2]);
  const indent = first[1].length;
  const items = [];
  while (i < lines.length) {
    const match = lines[i].match(ITEM);
    if (!match || match[1].length !== indent || /\d/.test(match[2]) !== ordered) break;
    const body = [lines[i].slice(match[0].length)];
    for (i += 1; i < lines.length; i += 1) {
      const next = lines[i];
      const nextIndent = next.match(/^[ \t]*/)[0].length;
      if (next.trim() && nextIndent <= indent) break;
      if (!next.trim() && !(lines[i + 1] ?? "").match(/^[ \t]+\S/)) break;
      body.push(next.slice(Math.min(nextIndent, indent + 2)));
    }
    items.push(h("li", {}, body.length === 1 ? inline(body[0]) : blocks(body, depth + 1)));
  }
  const start = ordered ? Number.parseInt(first[2], 10) : null;
  out.push(ordered ? h("ol", { start: start !== 1 ? start : null }, items) : h("ul", {}, items));
  return i;
}

function isTable(lines, i) {
  return lines[i].includes("|") && i + 1 < lines.length && lines[i + 1].includes("-")
    && TABLE_DIVIDER.test(lines[i + 1]);
}

function cells(line) {
  const trimmed = line.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "");
  return trimmed.split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll("\\|", "|"));
}

function table(lines, i, out) {
  const head = cells(lines[i]);
  const aligns = cells(lines[i + 1]).map((cell) => (cell.endsWith(":") ? (cell.startsWith(":") ? "center" : "right")
    : cell.startsWith(":") ? "left" : null));
  const rows = [];
  for (i += 2; i < lines.length && lines[i].includes("|") && lines[i].trim(); i += 1) rows.push(cells(lines[i]));
  const cell = (tag, text, column) => h(tag, { class: aligns[column] ? `align-${aligns[column]}` : null }, inline(text));
  out.push(h("div", { class: "table-scroll" }, h("table", {},
    h("thead", {}, h("tr", {}, head.map((text, column) => cell("th", text, column)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, head.map((_, column) => cell("td", row[column] ?? "", column))))))));
  return i;
}

// Inline spans ------------------------------------------------------------------------------------------

const EMPHASIS = [["**", "strong"], ["__", "strong"], ["~~", "del"], ["*", "em"], ["_", "em"]];

export function inline(text, depth = 0) {
  const out = [];
  // Searches only go forward: the last answer for a closer stands until the search passes it (and a
  // closer not found is never looked for again), so no stretch of text is searched twice.
  const found = new Map();
  const find = (what, from) => {
    const last = found.get(what);
    if (last !== undefined && (last < 0 || last >= from)) return last;
    const at = text.indexOf(what, from);
    found.set(what, at);
    return at;
  };
  let plain = "";
  const flush = () => {
    if (plain) out.push(plain);
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const char = text[i];
    if (char === "\\" && i + 1 < text.length && /[\\`*_~[\]()#>|!-]/.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (char === "`") {
      let run = 1;
      while (text[i + run] === "`") run += 1;
      const fence = "`".repeat(run);
      const close = find(fence, i + run);
      if (close >= 0) {
        flush();
        out.push(h("code", {}, text.slice(i + run, close).replace(/^ (.*) $/s, "$1")));
        i = close + run;
      } else {
        plain += fence;
        i += run;
      }
      continue;
    }
    if (char === "[" && depth < MAX_DEPTH) {
      const end = find("](", i + 1);
      const close = end >= 0 ? find(")", end + 2) : -1;
      if (end >= 0 && close >= 0 && !text.slice(i + 1, end).includes("\n")) {
        const label = text.slice(i + 1, end);
        const url = text.slice(end + 2, close).trim().split(/\s+/)[0] ?? "";
        flush();
        out.push(SAFE_LINK.test(url)
          ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer nofollow" }, inline(label, depth + 1))
          : h("span", { class: "unsafe-link", title: "link not followed" }, inline(label, depth + 1)));
        i = close + 1;
        continue;
      }
    }
    const emphasis = depth < MAX_DEPTH && EMPHASIS.find(([mark]) => text.startsWith(mark, i));
    if (emphasis && text[i + emphasis[0].length] && !/\s/.test(text[i + emphasis[0].length])
        && !(emphasis[0] === "_" && /\w/.test(text[i - 1] ?? ""))) {
      const [mark, tag] = emphasis;
      const close = find(mark, i + mark.length + 1);
      if (close >= 0) {
        flush();
        out.push(h(tag, {}, inline(text.slice(i + mark.length, close), depth + 1)));
        i = close + mark.length;
        continue;
      }
    }
    plain += char;
    i += 1;
  }
  flush();
  return out;
}
