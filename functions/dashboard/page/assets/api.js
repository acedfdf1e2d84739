// Talking to the dashboard's API with the session cookie (same origin, so the CSRF check passes).

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let onUnauthorized = () => {};

// What to do when the session has ended (expired, revoked, signed out in another tab).
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export async function api(path, { method = "GET", body, expect401 = false } = {}) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new ApiError(0, "network", "The dashboard cannot be reached; is the server (or the tunnel) up?");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data?.error ?? {};
    const failure = new ApiError(response.status, error.code ?? `http_${response.status}`,
      error.message ?? `The server answered ${response.status}.`, error.field);
    if (response.status === 401 && !expect401) onUnauthorized(failure);
    throw failure;
  }
  return data;
}

// Every page of a paginated list (`{"<key>": [...], "next_cursor"}`), up to a bound.
export async function listAll(path, key, maxPages = 10) {
  const rows = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const separator = path.includes("?") ? "&" : "?";
    const data = await api(cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path);
    rows.push(...data[key]);
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return rows;
}

export const path = (strings, ...values) =>
  strings.reduce((text, part, index) => text + part + (index < values.length ? encodeURIComponent(values[index]) : ""), "");
