// One conversation column: a session's messages, the streaming answer, Stop, Retry and feedback.
// The single chat is one column; compare mode shows two to four side by side (see compare.js).
import { api, ApiError } from "./api.js";
import { iconButton } from "./icons.js";
import { renderMarkdown } from "./markdown.js";

export class Conversation {
  /**
   * @param {HTMLElement} log  the element that holds the messages (role="log")
   * @param {object} options  `getSettings()` → the chat's settings; `onChange(session)` after a turn or
   *   when a session is created; `createSession(model)` → a new session for this column.
   */
  constructor(log, { getSettings, onChange, createSession }) {
    this.log = log;
    this.getSettings = getSettings;
    this.onChange = onChange;
    this.createSession = createSession;
    this.session = null;
    this.model = null;
    this.controller = null;
  }

  get busy() {
    return this.controller !== null;
  }

  clear() {
    this.session = null;
    this.log.replaceChildren();
  }

  /** Show a stored session and its history. */
  show(session) {
    this.session = session;
    this.model = session.model;
    this.log.replaceChildren();
    for (const message of session.messages) {
      if (message.role === "user") this.log.append(userView(message.content));
      else if (message.role === "assistant") new AnswerView(this, message).appendTo(this.log);
    }
    this.scroll(true);
  }

  /** Send `text` as a new user message and stream the answer into a new answer view. */
  async send(text) {
    const user = userView(text);
    const answer = new AnswerView(this, { model: this.model, status: "streaming" });
    this.log.append(user);
    answer.appendTo(this.log);
    this.scroll(true);
    await this.run(answer, async (signal) => {
      if (!this.session) {
        this.session = await this.createSession(this.model);
        this.onChange(this.session);
      }
      const body = { content: text, model: this.model, ...this.getSettings().request };
      return api.sendMessage(this.session.id, body, signal);
    }, () => {
      // Refused before anything was stored: Retry sends the same text again.
      user.remove();
      answer.element.remove();
      return this.send(text);
    });
  }

  /** Generate a stored failed or cancelled answer again, in place. */
  async retry(answer) {
    answer.reset();
    await this.run(answer, (signal) => {
      const body = { model: this.model, ...this.getSettings().request };
      return api.retry(this.session.id, answer.message.id, body, signal);
    }, () => this.retry(answer));
  }

  stop() {
    this.controller?.abort();
  }

  async run(answer, open, resend) {
    this.controller = new AbortController();
    const signal = this.controller.signal;
    let started = false;
    try {
      for await (const { event, data } of await open(signal)) {
        if (event === "start") {
          started = true;
          answer.message.id = data.assistant_message_id;
        } else if (event === "delta") {
          answer.append(data.text);
          this.scroll();
        } else if (event === "end") {
          answer.finish(data.message);
        }
      }
      if (answer.message.status === "streaming") answer.fail("The connection closed before the answer ended.", null);
    } catch (error) {
      if (error.name === "AbortError" && !started) {
        answer.fail("Stopped before the answer started.", resend);
      } else if (error.name === "AbortError") {
        answer.finish({ ...answer.message, content: answer.text, status: "cancelled", error: "Stopped." });
      } else {
        const message = error instanceof ApiError ? error.message : `The answer could not be read: ${error.message}`;
        answer.fail(message, started ? null : resend);
      }
    } finally {
      this.controller = null;
      this.onChange(this.session, { ended: true });
      this.scroll();
    }
  }

  scroll(force = false) {
    const log = this.log;
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 120;
    if (force || nearBottom) log.scrollTop = log.scrollHeight;
  }
}

function userView(text) {
  const article = document.createElement("article");
  article.className = "msg user";
  const label = document.createElement("h3");
  label.className = "visually-hidden";
  label.textContent = "You said:";
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.textContent = text; // a person's text is shown as typed, never parsed as HTML
  article.append(label, bubble);
  return article;
}

/** One answer: its Markdown body, status line, inline error with Retry, and feedback controls. */
class AnswerView {
  constructor(conversation, message) {
    this.conversation = conversation;
    this.message = { id: null, content: "", error: null, feedback: null, ...message };
    this.text = this.message.content;
    this.frame = 0;
    this.element = document.createElement("article");
    this.element.className = "msg assistant";
    const label = document.createElement("h3");
    label.className = "visually-hidden";
    label.textContent = "Answer:";
    this.meta = document.createElement("div");
    this.meta.className = "msg-meta";
    this.body = document.createElement("div");
    this.body.className = "markdown";
    this.notice = document.createElement("div");
    this.notice.className = "msg-notice";
    this.actions = document.createElement("div");
    this.actions.className = "msg-actions";
    this.element.append(label, this.meta, this.body, this.notice, this.actions);
    this.render();
  }

  appendTo(parent) {
    parent.append(this.element);
  }

  reset() {
    this.text = "";
    this.message = { ...this.message, content: "", status: "streaming", error: null, feedback: null };
    this.render();
  }

  append(text) {
    this.text += text;
    // Re-render at most once a frame: Markdown is parsed again as a whole each time.
    if (!this.frame) {
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        renderMarkdown(this.body, this.text);
      });
    }
  }

  finish(message) {
    this.message = { ...this.message, ...message };
    this.text = message.content ?? this.text;
    this.render();
  }

  fail(error, resend) {
    this.resend = resend;
    this.finish({ ...this.message, content: this.text, status: resend ? "refused" : "failed", error });
  }

  render() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    const { status, model, error } = this.message;
    const streaming = status === "streaming";
    this.element.dataset.status = status;
    this.body.setAttribute("aria-busy", String(streaming));
    renderMarkdown(this.body, this.text);
    if (streaming && !this.text) this.body.append(typingIndicator());
    this.meta.textContent = [model, metaDetails(this.message)].filter(Boolean).join(" · ");
    this.notice.replaceChildren();
    this.actions.replaceChildren();
    if (status === "failed" || status === "refused" || status === "cancelled") {
      this.notice.append(this.retryNotice(status, error));
    } else if (status === "complete" && this.message.id) {
      this.actions.append(...this.feedbackControls());
    }
  }

  retryNotice(status, error) {
    const box = document.createElement("div");
    box.className = status === "cancelled" ? "notice notice-info" : "notice notice-error";
    box.setAttribute("role", status === "cancelled" ? "status" : "alert");
    const text = document.createElement("span");
    text.textContent = status === "cancelled" ? `Stopped. ${error && error !== "Stopped." ? error : ""}`.trim() : error;
    const retry = iconButton("retry", "Retry", { className: "button small", showLabel: true });
    retry.addEventListener("click", () => {
      if (this.conversation.busy) return;
      if (status === "refused") this.resend();
      else this.conversation.retry(this);
    });
    box.append(text, retry);
    return box;
  }

  feedbackControls() {
    const feedback = this.message.feedback;
    const make = (rating, label) => {
      const button = iconButton(rating, label, { className: "icon-button feedback" });
      button.setAttribute("aria-pressed", String(feedback?.rating === rating));
      button.title = label;
      button.addEventListener("click", () => this.rate(feedback?.rating === rating ? null : rating));
      return button;
    };
    const controls = [make("up", "Good answer"), make("down", "Bad answer")];
    if (feedback?.comment) {
      const comment = document.createElement("span");
      comment.className = "feedback-comment";
      comment.textContent = `“${feedback.comment}”`;
      controls.push(comment);
    }
    return controls;
  }

  async rate(rating, comment = null) {
    const { session } = this.conversation;
    try {
      const stored = rating
        ? await api.setFeedback(session.id, this.message.id, { rating, comment })
        : await api.clearFeedback(session.id, this.message.id);
      this.message.feedback = stored.feedback;
      this.actions.replaceChildren(...this.feedbackControls());
      if (rating && comment === null) this.actions.append(this.commentForm(rating));
    } catch (error) {
      const failure = document.createElement("span");
      failure.className = "feedback-error";
      failure.setAttribute("role", "alert");
      failure.textContent = `Feedback not saved: ${error.message}`;
      this.actions.append(failure);
    }
  }

  commentForm(rating) {
    const form = document.createElement("form");
    form.className = "comment-form";
    const id = `comment-${this.message.id}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = rating === "up" ? "What was good? (optional)" : "What was wrong? (optional)";
    const input = document.createElement("input");
    input.id = id;
    input.name = "comment";
    input.maxLength = 2000;
    input.autocomplete = "off";
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "button small primary";
    save.textContent = "Send feedback";
    form.append(label, input, save);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (text) this.rate(rating, text);
      else form.remove();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") form.remove();
    });
    queueMicrotask(() => input.focus());
    return form;
  }
}

function metaDetails(message) {
  const parts = [];
  if (message.completion_tokens) parts.push(`${message.completion_tokens} tokens`);
  if (message.latency_ms) parts.push(`${(message.latency_ms / 1000).toFixed(1)} s`);
  return parts.join(" · ");
}

function typingIndicator() {
  const dots = document.createElement("span");
  dots.className = "typing";
  dots.setAttribute("aria-label", "Generating");
  dots.append(document.createElement("i"), document.createElement("i"), document.createElement("i"));
  return dots;
}
