// A session's first page of messages (GET /api/msgs by session): from the newest, from the oldest, or
// around one message.

import { api, path } from "./api.js";

const FIRST_PAGE = 40; // a screenful or two, shown at once; the next page comes while it is read

// The rows in the order shown, and whether they reach either end of the session. `where` is "newest",
// "oldest" or a messages row id.
export async function firstPage(sessionId, where, options = {}) {
  const base = path`/api/msgs?session_id=${sessionId}`;
  if (where === "newest") {
    const page = await api(`${base}&limit=${FIRST_PAGE}`, options);
    return { rows: page.messages.reverse(), reachedOldest: !page.next_cursor, atNewest: true };
  }
  if (where === "oldest") {
    const page = await api(`${base}&order=oldest_first&limit=${FIRST_PAGE}`, options);
    return { rows: page.messages, reachedOldest: true, atNewest: !page.next_cursor };
  }
  const from = `${base}&from_id=${encodeURIComponent(where)}&limit=${FIRST_PAGE / 2}`;
  const [before, after] = await Promise.all([api(from, options), api(`${from}&order=oldest_first`, options)]);
  return { rows: [...before.messages.reverse(), ...after.messages.slice(1)], reachedOldest: !before.next_cursor,
    atNewest: !after.next_cursor };
}
