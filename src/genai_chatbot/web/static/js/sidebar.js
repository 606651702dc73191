// The sessions sidebar: every chat of this user, most recent first; open, rename and delete them.
import { api } from "./api.js";
import { iconButton } from "./icons.js";

export class Sidebar {
  /**
   * @param {HTMLUListElement} list
   * @param {object} options  `onOpen(id)`, `onDeleted(id)`, `confirm(text)` → Promise<boolean>,
   *   `onError(message)`.
   */
  constructor(list, { onOpen, onDeleted, confirm, onError }) {
    this.list = list;
    this.onOpen = onOpen;
    this.onDeleted = onDeleted;
    this.confirm = confirm;
    this.onError = onError;
    this.active = new Set();
    this.sessions = [];
  }

  /** Mark these session ids as shown in the main view. */
  setActive(ids) {
    this.active = new Set(ids);
    for (const item of this.list.children) {
      const link = item.querySelector(".session-link");
      if (!link) continue;
      if (this.active.has(item.dataset.id)) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  async refresh() {
    try {
      this.sessions = await api.sessions();
    } catch (error) {
      this.onError(error.message);
      return;
    }
    this.list.replaceChildren(...this.sessions.map((s) => this.item(s)));
    if (!this.sessions.length) {
      const empty = document.createElement("li");
      empty.className = "sessions-empty";
      empty.textContent = "No chats yet.";
      this.list.append(empty);
    }
    this.setActive(this.active);
  }

  item(session) {
    const li = document.createElement("li");
    li.className = "session";
    li.dataset.id = session.id;
    const link = document.createElement("a");
    link.href = `/chat/${encodeURIComponent(session.id)}`;
    link.className = "session-link";
    const title = document.createElement("span");
    title.className = "session-title";
    title.textContent = session.title || "New chat";
    const meta = document.createElement("span");
    meta.className = "session-meta";
    const time = document.createElement("time");
    time.dateTime = new Date(session.updated_at * 1000).toISOString();
    time.textContent = relativeTime(session.updated_at);
    time.title = new Date(session.updated_at * 1000).toLocaleString();
    meta.append(time, ` · ${session.model}`);
    link.append(title, meta);
    link.addEventListener("click", (event) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      this.onOpen(session.id);
    });
    const name = session.title || "New chat";
    const rename = iconButton("pencil", `Rename “${name}”`);
    rename.addEventListener("click", () => this.rename(li, session));
    const remove = iconButton("trash", `Delete “${name}”`);
    remove.addEventListener("click", async () => {
      if (!(await this.confirm(`Delete “${name}” and its messages? This cannot be undone.`))) return;
      try {
        await api.deleteSession(session.id);
        this.onDeleted(session.id);
        await this.refresh();
      } catch (error) {
        this.onError(error.message);
      }
    });
    const tools = document.createElement("div");
    tools.className = "session-tools";
    tools.append(rename, remove);
    li.append(link, tools);
    return li;
  }

  rename(li, session) {
    const form = document.createElement("form");
    form.className = "rename-form";
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = `rename-${session.id}`;
    label.textContent = "New title";
    const input = document.createElement("input");
    input.id = `rename-${session.id}`;
    input.value = session.title;
    input.maxLength = 200;
    input.required = true;
    form.append(label, input);
    const cancel = () => this.refresh();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = input.value.trim();
      if (!title) return;
      try {
        await api.updateSession(session.id, { title });
      } catch (error) {
        this.onError(error.message);
      }
      await this.refresh();
      this.list.querySelector(`[data-id="${session.id}"] .session-link`)?.focus();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") cancel();
    });
    li.replaceChildren(form);
    input.focus();
    input.select();
  }
}

function relativeTime(seconds) {
  const elapsed = Date.now() / 1000 - seconds;
  if (elapsed < 60) return "just now";
  if (elapsed < 3600) return `${Math.floor(elapsed / 60)} min ago`;
  if (elapsed < 86400) return `${Math.floor(elapsed / 3600)} h ago`;
  const date = new Date(seconds * 1000);
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
}
