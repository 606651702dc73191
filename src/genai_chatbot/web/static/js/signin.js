// The page's side of signing in through the server's identity provider (auth = "oidc"): finish a sign-in
// that comes back to /auth/callback, ask before signing in when signed out or when signing in failed, and
// sign in again when the token runs out or the server refuses it. The protocol itself is in auth.js.
import { getToken, onUnauthorized } from "./api.js";
import { Auth, CALLBACK_PATH, jwtClaims, keepDraft } from "./auth.js";

export class SignInFlow {
  /** `dialog`: the Sign in dialog (its text in `.signin-text`); `signOutButton`: shown once signed in. */
  constructor(dialog, signOutButton) {
    this.dialog = dialog;
    this.signOutButton = signOutButton;
    this.auth = null;
  }

  /** Whether the page signs in through a provider (then a 401 is handled here, not by the caller). */
  get active() {
    return Boolean(this.auth?.oidc);
  }

  /** Signs in first when the server uses OIDC; false when the page must wait (it left, or it asks). */
  async prepare() {
    try {
      this.auth = await Auth.load();
    } catch (error) {
      // E.g. the identity provider is unreachable (503): say so; "Sign in" then tries again.
      this.dialog.addEventListener("close", () => location.reload(), { once: true });
      this.ask(error.message);
      return false;
    }
    if (!this.active) return true;
    this.dialog.addEventListener("cancel", (event) => event.preventDefault());
    this.dialog.addEventListener("close", () => this.signIn("/"));
    this.signOutButton.addEventListener("click", () => this.auth.signOut());
    if (location.pathname === CALLBACK_PATH) {
      try {
        history.replaceState({}, "", await this.auth.completeSignIn());
      } catch (error) {
        history.replaceState({}, "", "/");
        this.ask(error.message);
        return false;
      }
    }
    if (this.auth.signedOut) {
      this.ask("You are signed out.");
      return false;
    }
    if (!this.auth.hasFreshToken()) {
      await this.signIn();
      return false;
    }
    const claims = jwtClaims(getToken() || "") || {};
    this.signOutButton.title = `Signed in as ${claims.email || claims.preferred_username || claims.username || claims.sub}`;
    this.signOutButton.hidden = false;
    onUnauthorized(async (message) => {
      // Refused right after signing in: the settings do not match the provider; redirecting would loop.
      if (this.auth.justSignedIn) this.ask(`The server refused the sign-in: ${message}`);
      else this.signIn();
      return false; // signing in leaves the page: the refused call is not sent again
    });
    return true;
  }

  /** False when the token ran out: then the message is kept and the page signs in again first. */
  beforeSend(content) {
    if (!this.active || this.auth.hasFreshToken()) return true;
    keepDraft(content); // signing in leaves the page; the message comes back after it
    this.signIn();
    return false;
  }

  ask(message) {
    this.dialog.querySelector(".signin-text").textContent = message;
    if (!this.dialog.open) this.dialog.showModal();
  }

  async signIn(returnTo) {
    // Several calls refused at once each ask to sign in: the first one leaves the page, once.
    if (this.leaving) return;
    this.leaving = true;
    try {
      await this.auth.signIn(returnTo);
    } catch (error) {
      this.leaving = false;
      this.ask(error.message);
    }
  }
}
