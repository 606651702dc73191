// Sign-in through the server's OpenID Connect provider: authorization code flow with PKCE (S256).
//
// The page is a public client: it sends the browser to the provider's authorization endpoint with a
// random state, nonce and code challenge (kept in sessionStorage for this tab), comes back to
// /auth/callback with a code, checks the state, and redeems the code at the token endpoint with the
// verifier (the server's CSP allows exactly that origin). The token the server accepts (the ID token, or
// the access token when the server says so) is stored where api.js keeps its bearer token.
import { getToken, setToken } from "./api.js";

export const CALLBACK_PATH = "/auth/callback";
const FLOW_KEY = "genai-chatbot.oidc-flow";
const SIGNED_OUT_KEY = "genai-chatbot.signed-out";
const SIGNED_IN_AT_KEY = "genai-chatbot.signed-in-at";
const DRAFT_KEY = "genai-chatbot.draft";
// A token this close to its expiry is not used: sign in again instead of sending it to fail.
const EXPIRY_MARGIN_SECONDS = 30;

/** Sign-in failed; `message` says what happened and what to do. */
export class SignInError extends Error {}

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

async function codeChallenge(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** The claims of a JWT, unverified (the server verifies); null when it is not a JWT. */
export function jwtClaims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/** Keep an unsent message across the sign-in round trip, which leaves the page. */
export function keepDraft(text) {
  sessionStorage.setItem(DRAFT_KEY, text);
}

/** The message kept before signing in again ("" when none), once. */
export function takeDraft() {
  const draft = sessionStorage.getItem(DRAFT_KEY) || "";
  sessionStorage.removeItem(DRAFT_KEY);
  return draft;
}

function redirectUri() {
  return `${location.origin}${CALLBACK_PATH}`;
}

/** How this server wants the page to sign in: `GET /api/auth/config`. */
export class Auth {
  static async load() {
    let response;
    try {
      response = await fetch("/api/auth/config");
    } catch {
      throw new SignInError("The server cannot be reached; check that genai-chatbot serve is running.");
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // Not JSON: an older server without the endpoint; treat it as one without OIDC.
    }
    if (!response.ok) {
      if (response.status === 404) return new Auth({ mode: "none" });
      throw new SignInError(body?.error?.message ?? `Cannot read how to sign in (${response.status}).`);
    }
    return new Auth(body);
  }

  constructor(config) {
    this.mode = config.mode;
    this.oidc = config.mode === "oidc" ? config.oidc : null;
  }

  /** Whether a stored token is usable now: present and not (nearly) expired. */
  hasFreshToken() {
    const token = getToken();
    if (!token) return false;
    const exp = jwtClaims(token)?.exp;
    return typeof exp !== "number" || exp - EXPIRY_MARGIN_SECONDS > Date.now() / 1000;
  }

  /** Whether the user signed out in this tab (then the page waits for "Sign in" instead of redirecting). */
  get signedOut() {
    return sessionStorage.getItem(SIGNED_OUT_KEY) === "1" && !getToken();
  }

  /** Whether a 401 right now follows a fresh sign-in: the server refuses the provider's token (settings). */
  get justSignedIn() {
    const at = Number(sessionStorage.getItem(SIGNED_IN_AT_KEY) || 0);
    return Date.now() - at < 60_000;
  }

  /** Go to the provider's sign-in page; the promise never resolves (the page is left). */
  async signIn(returnTo = location.pathname + location.search) {
    if (!this.oidc) throw new SignInError("This server does not sign in through an identity provider.");
    if (!crypto.subtle) {
      throw new SignInError("Signing in needs a secure page: open the chatbot over HTTPS (or on localhost).");
    }
    const flow = { state: randomString(), nonce: randomString(), verifier: randomString(), returnTo };
    sessionStorage.setItem(FLOW_KEY, JSON.stringify(flow));
    sessionStorage.removeItem(SIGNED_OUT_KEY);
    const url = new URL(this.oidc.authorization_endpoint);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: this.oidc.client_id,
      redirect_uri: redirectUri(),
      scope: this.oidc.scopes.join(" "),
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: await codeChallenge(flow.verifier),
      code_challenge_method: "S256",
    }).toString();
    location.assign(url.toString());
    return new Promise(() => {});
  }

  /** On /auth/callback: check the state, redeem the code, store the token; the path to go back to. */
  async completeSignIn() {
    const params = new URLSearchParams(location.search);
    const flow = JSON.parse(sessionStorage.getItem(FLOW_KEY) || "null");
    sessionStorage.removeItem(FLOW_KEY); // one use, whatever happens
    if (params.get("error")) {
      const reason = params.get("error_description") || params.get("error");
      throw new SignInError(`The identity provider refused the sign-in: ${reason.replace(/\.$/, "")}.`);
    }
    if (!flow || !params.get("state") || params.get("state") !== flow.state) {
      throw new SignInError("This sign-in answer does not belong to a sign-in started here (state mismatch); sign in again.");
    }
    let response;
    try {
      response = await fetch(this.oidc.token_endpoint, {
        method: "POST",
        credentials: "omit",
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code: params.get("code") || "",
          redirect_uri: redirectUri(),
          client_id: this.oidc.client_id,
          code_verifier: flow.verifier,
        }),
      });
    } catch {
      throw new SignInError(
        "The identity provider's token endpoint cannot be reached from this page; check that it allows this origin (CORS).",
      );
    }
    const tokens = await response.json().catch(() => ({}));
    if (!response.ok) {
      const reason = tokens.error_description || tokens.error || `HTTP ${response.status}`;
      throw new SignInError(`The identity provider did not issue a token: ${reason.replace(/\.$/, "")}.`);
    }
    if (tokens.id_token && jwtClaims(tokens.id_token)?.nonce !== flow.nonce) {
      throw new SignInError("The ID token does not carry this sign-in's nonce; sign in again.");
    }
    const token = tokens[this.oidc.token] || tokens.access_token;
    if (!token) throw new SignInError(`The identity provider returned no ${this.oidc.token}; check the app client's scopes.`);
    setToken(token);
    sessionStorage.setItem(SIGNED_IN_AT_KEY, String(Date.now()));
    return flow.returnTo && flow.returnTo.startsWith("/") && !flow.returnTo.startsWith("//") ? flow.returnTo : "/";
  }

  /** Forget the token and end the provider's session when it offers an end-session endpoint. */
  signOut() {
    const token = getToken();
    setToken(null);
    sessionStorage.setItem(SIGNED_OUT_KEY, "1");
    const end = this.oidc?.end_session_endpoint;
    if (!end) {
      location.assign("/");
      return;
    }
    const url = new URL(end);
    url.searchParams.set("client_id", this.oidc.client_id);
    url.searchParams.set("post_logout_redirect_uri", `${location.origin}/`);
    if (token && this.oidc.token === "id_token") url.searchParams.set("id_token_hint", token);
    location.assign(url.toString());
  }
}
