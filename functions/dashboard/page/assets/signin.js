// The sign-in view: the DASHBOARD_TOKEN form, and "Sign in with GitHub" when the server offers it.

import { api } from "./api.js";
import { byId } from "./dom.js";

export async function showSignIn({ note, onSignedIn }) {
  byId("dashboard").hidden = true;
  byId("signin").hidden = false;
  byId("signin-error").textContent = "";
  if (note) byId("signin-note").textContent = note;
  const form = byId("signin-form");
  form.onsubmit = (event) => {
    event.preventDefault();
    signIn(form, onSignedIn);
  };
  byId("signin-token").focus();
  try {
    const providers = await api("/api/auth/providers", { expect401: true });
    byId("signin-github").hidden = !providers.github;
  } catch {
    byId("signin-github").hidden = true; // the token form works without it
  }
}

async function signIn(form, onSignedIn) {
  const input = byId("signin-token");
  const button = form.querySelector("button[type=submit]");
  const error = byId("signin-error");
  error.textContent = "";
  if (!input.value.trim()) {
    error.textContent = "Enter the dashboard token.";
    input.focus();
    return;
  }
  button.disabled = true;
  try {
    const answer = await api("/api/auth/login", { method: "POST", body: { token: input.value.trim() }, expect401: true });
    input.value = "";
    await onSignedIn(answer.user);
  } catch (failure) {
    error.textContent = failure.status === 401 ? "That token is not right."
      : failure.status === 429 ? `Too many attempts: ${failure.message}` : failure.message;
    input.select();
  } finally {
    button.disabled = false;
  }
}
