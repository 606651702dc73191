// The page's only way to the server: the public chat API (the same endpoints a script would use).
import { readEvents } from "./sse.js";

const TOKEN_KEY = "genai-chatbot.token";

/** An error the API answered with; `message` is the server's sentence, which says what to do. */
export class ApiError extends Error {
  constructor(message, status, code = null) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function hasToken() {
  return Boolean(localStorage.getItem(TOKEN_KEY));
}

// Called with the server's message on a 401; resolves true when a new token was set (the call is then
// sent again), false to give up with the error.
let unauthorized = null;
export function onUnauthorized(handler) {
  unauthorized = handler;
}

function headers(json) {
  const result = {};
  if (json) result["content-type"] = "application/json";
  const token = localStorage.getItem(TOKEN_KEY);
  if (token) result.authorization = `Bearer ${token}`;
  return result;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = null;
  try {
    const body = await response.json();
    message = body.error?.message ?? message;
    code = body.error?.code ?? null;
  } catch {
    // Not JSON (a proxy's error page): the status line is all there is.
  }
  return new ApiError(message, response.status, code);
}

async function call(method, path, body, signal) {
  for (;;) {
    let response;
    try {
      response = await fetch(path, {
        method,
        headers: headers(body !== undefined),
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new ApiError("The server cannot be reached; check that genai-chatbot serve is running.", 0);
    }
    if (response.ok) return response;
    const error = await failure(response);
    if (response.status === 401 && unauthorized && (await unauthorized(error.message))) continue;
    throw error;
  }
}

async function json(method, path, body) {
  const response = await call(method, path, body);
  return response.status === 204 ? null : response.json();
}

export const api = {
  /** `{models, problems}`: every model, and what hides others (a broken keys source), with the fix. */
  models: () => json("GET", "/api/models"),
  openapi: () => json("GET", "/openapi.json"),
  /** Your usage this month (UTC), summed by day; `total` is the month's. */
  usage: () => json("GET", "/api/usage?by=day"),
  sessions: () => json("GET", "/api/sessions"),
  session: (id) => json("GET", `/api/sessions/${encodeURIComponent(id)}`),
  createSession: (body) => json("POST", "/api/sessions", body),
  updateSession: (id, body) => json("PATCH", `/api/sessions/${encodeURIComponent(id)}`, body),
  deleteSession: (id) => json("DELETE", `/api/sessions/${encodeURIComponent(id)}`),
  setFeedback: (sessionId, messageId, body) =>
    json("PUT", `/api/sessions/${encodeURIComponent(sessionId)}/messages/${encodeURIComponent(messageId)}/feedback`, body),
  clearFeedback: (sessionId, messageId) =>
    json("DELETE", `/api/sessions/${encodeURIComponent(sessionId)}/messages/${encodeURIComponent(messageId)}/feedback`),

  /** Send a user message; yields the turn's events (start, delta…, end). */
  sendMessage: (sessionId, body, signal) =>
    turn(`/api/sessions/${encodeURIComponent(sessionId)}/messages`, body, signal),

  /** Generate a failed, cancelled or interrupted answer again; yields the same events as a turn. */
  retry: (sessionId, messageId, body, signal) =>
    turn(`/api/sessions/${encodeURIComponent(sessionId)}/messages/${encodeURIComponent(messageId)}/retry`, body, signal),
};

async function* turn(path, body, signal) {
  const response = await call("POST", path, body, signal);
  if (body.stream === false) {
    // One JSON body: replay it as the events a stream would have carried, so callers have one code path.
    const result = await response.json();
    yield { event: "start", data: { user_message: result.user_message, assistant_message_id: result.message.id } };
    if (result.message.content) yield { event: "delta", data: { text: result.message.content } };
    yield { event: "end", data: { message: result.message } };
    return;
  }
  yield* readEvents(response.body);
}
