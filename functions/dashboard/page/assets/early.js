// What a page load asks the server before the rest of the page has arrived: who is signed in, and at a
// transcript's address (/?session=<id>[&message=<id>]) its first page. index.html runs this module on
// its own, as soon as it (and its three small imports) are in, while the other modules still load; app.js
// and transcript.js take the answers from here.
//
// Both are asked with expect401, so a signed-out answer signs nothing out by itself: app.js shows the
// sign-in when `signedIn` says 401, and the transcript's page is only ever shown to someone signed in
// (a 401 there is asked again the ordinary way once they are).

import { api } from "./api.js";
import { firstPage } from "./messages.js";
import { currentRoute } from "./router.js";

export const signedIn = api("/api/auth/me", { expect401: true });
signedIn.catch(() => {}); // app.js reads it

let transcript = null;
const route = currentRoute();
if (route.view === "session") {
  const where = route.messageId ?? "newest";
  const answer = firstPage(route.sessionId, where, { expect401: true });
  answer.catch(() => {}); // read when the transcript opens, or never
  transcript = { sessionId: route.sessionId, where, answer };
}

// No one was signed in: the early page is not kept for whoever signs in later (it may be old by then).
export function forgetEarly() {
  transcript = null;
}

// The early first page if it is the one asked for (once only), else null.
export function takeEarly(sessionId, where) {
  const taken = transcript;
  transcript = null;
  if (taken?.sessionId !== sessionId || taken.where !== where) return null;
  return taken.answer.catch((error) => (error.status === 401 ? firstPage(sessionId, where) : Promise.reject(error)));
}
