// The page: wires the sidebar, the model picker, the settings panel, compare mode and the composer to
// the conversation columns. Each concept lives in its own module; this one only connects them.
import { api, hasToken, onUnauthorized, setToken } from "./api.js";
import { takeDraft } from "./auth.js";
import { chooseModels } from "./compare.js";
import { Conversation } from "./conversation.js";
import { icon } from "./icons.js";
import { defaultModelId, fillModelPicker, optionLabel, selectModel, showProblems } from "./models.js";
import { DEFAULT_SETTINGS, limitsFromOpenApi, loadSettings, requestFields, saveSettings, SettingsPanel } from "./settings.js";
import { Sidebar } from "./sidebar.js";
import { SignInFlow } from "./signin.js";
import { initThemeToggle } from "./theme.js";
import { showSpend } from "./usage.js";

const $ = (id) => document.getElementById(id);
const ui = {
  app: $("app"),
  sidebar: $("sidebar"),
  sessionList: $("session-list"),
  sidebarToggle: $("sidebar-toggle"),
  scrim: $("scrim"),
  newChat: $("new-chat"),
  picker: $("model-picker"),
  modelProblems: $("model-problems"),
  pickerWrap: $("model-picker-wrap"),
  compareSummary: $("compare-summary"),
  compareToggle: $("compare-toggle"),
  settingsToggle: $("settings-toggle"),
  settings: $("settings"),
  settingsForm: $("settings-form"),
  settingsClose: $("settings-close"),
  columns: $("columns"),
  composer: $("composer"),
  prompt: $("prompt"),
  send: $("send"),
  stop: $("stop"),
  toast: $("toast"),
  confirmDialog: $("confirm-dialog"),
  compareDialog: $("compare-dialog"),
  tokenDialog: $("token-dialog"),
  signinDialog: $("signin-dialog"),
  signOut: $("sign-out"),
};

const state = {
  models: [],
  mode: "single",
  columns: [], // [{conversation, element}]
  settings: { ...DEFAULT_SETTINGS },
};

const narrow = window.matchMedia("(max-width: 760px)");

// Columns ----------------------------------------------------------------------------------------

function makeColumn(model, heading) {
  const element = document.createElement("section");
  element.className = "column";
  const log = document.createElement("div");
  log.className = "log";
  log.setAttribute("role", "log");
  log.tabIndex = 0;
  log.dataset.emptyText = heading ? "Waiting for the first prompt." : "Ask anything. Enter sends, Shift+Enter adds a line.";
  if (heading) {
    const head = document.createElement("h2");
    head.className = "column-head";
    head.textContent = heading;
    element.append(head);
    element.setAttribute("aria-label", heading);
    log.setAttribute("aria-label", `Messages with ${heading}`);
  } else {
    log.setAttribute("aria-label", "Messages");
  }
  element.append(log);
  const conversation = new Conversation(log, {
    getSettings: () => ({ request: requestFields(state.settings) }),
    createSession: (modelId) =>
      api.createSession({ model: modelId, system_prompt: state.settings.system_prompt || undefined }),
    onChange: (session) => onConversationChange(session),
  });
  conversation.model = model;
  return { conversation, element };
}

function showColumns(columns, mode) {
  for (const column of state.columns) column.conversation.stop();
  state.columns = columns;
  state.mode = mode;
  ui.columns.replaceChildren(...columns.map((c) => c.element));
  ui.columns.dataset.count = String(columns.length);
  ui.app.dataset.mode = mode;
  ui.pickerWrap.hidden = mode === "compare";
  ui.compareSummary.hidden = mode !== "compare";
  ui.compareToggle.replaceChildren(icon("columns"), text(mode === "compare" ? "Exit compare" : "Compare"));
  ui.compareToggle.setAttribute("aria-pressed", String(mode === "compare"));
  sidebar.setActive(columns.map((c) => c.conversation.session?.id).filter(Boolean));
  updateComposer();
}

function text(value) {
  const span = document.createElement("span");
  span.className = "button-label";
  span.textContent = value;
  return span;
}

function onConversationChange(session) {
  if (session && state.mode === "single" && location.pathname !== `/chat/${session.id}`) {
    history.pushState({}, "", `/chat/${session.id}`);
  }
  if (session) saveSettings(session.id, state.settings);
  sidebar.setActive(state.columns.map((c) => c.conversation.session?.id).filter(Boolean));
  sidebar.refresh();
  showSpend($("spend"));
  updateComposer();
}

// Chats ------------------------------------------------------------------------------------------

function newChat({ push = true } = {}) {
  state.settings = { ...DEFAULT_SETTINGS };
  settingsPanel.show(state.settings);
  selectModel(ui.picker, state.models, defaultModelId(state.models));
  showColumns([makeColumn(ui.picker.value)], "single");
  if (push && location.pathname !== "/") history.pushState({}, "", "/");
  document.title = "New chat · genai-chatbot";
  closeSidebarOnPhone();
  ui.prompt.focus();
}

async function openSession(id, { push = true } = {}) {
  let session;
  try {
    session = await api.session(id);
  } catch (error) {
    toast(error.message);
    newChat({ push: true });
    return;
  }
  const column = makeColumn(session.model);
  column.conversation.show(session);
  selectModel(ui.picker, state.models, session.model);
  ui.picker.value = session.model; // even when unavailable now: it is the model this chat used
  state.settings = loadSettings(session.id) || settingsFromHistory(session);
  settingsPanel.show(state.settings);
  showColumns([column], "single");
  if (push && location.pathname !== `/chat/${id}`) history.pushState({}, "", `/chat/${id}`);
  document.title = `${session.title || "Chat"} · genai-chatbot`;
  closeSidebarOnPhone();
  ui.prompt.focus();
}

/** A session opened elsewhere has no stored page settings: take them from its last answer's parameters. */
function settingsFromHistory(session) {
  const last = [...session.messages].reverse().find((m) => m.role === "assistant");
  const params = last?.params || {};
  return {
    ...DEFAULT_SETTINGS,
    system_prompt: session.system_prompt || "",
    temperature: params.temperature ?? null,
    top_p: params.top_p ?? null,
    max_tokens: params.max_tokens ?? null,
  };
}

async function startCompare() {
  if (state.mode === "compare") {
    newChat();
    return;
  }
  const available = state.models.filter((m) => m.available).map((m) => m.id);
  const ids = await chooseModels(ui.compareDialog, state.models, available.slice(0, 2));
  if (!ids) return;
  state.settings = { ...DEFAULT_SETTINGS, ...state.settings };
  const labels = new Map(state.models.map((m) => [m.id, optionLabel(m)]));
  showColumns(ids.map((id) => makeColumn(id, labels.get(id) || id)), "compare");
  ui.compareSummary.textContent = `Comparing ${ids.length} models`;
  if (location.pathname !== "/") history.pushState({}, "", "/");
  document.title = "Compare · genai-chatbot";
  ui.prompt.focus();
}

// Composer ---------------------------------------------------------------------------------------

function updateComposer() {
  const busy = state.columns.some((c) => c.conversation.busy);
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.composer.setAttribute("aria-busy", String(busy));
}

function submitPrompt() {
  const content = ui.prompt.value.trim();
  if (!content || state.columns.some((c) => c.conversation.busy)) return;
  if (!signin.beforeSend(content)) return;
  if (state.mode === "single") state.columns[0].conversation.model = ui.picker.value;
  ui.prompt.value = "";
  autosize();
  for (const column of state.columns) column.conversation.send(content);
  updateComposer();
}

function autosize() {
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight, 240)}px`;
}

// Panels and dialogs -----------------------------------------------------------------------------

function setSidebar(open) {
  ui.app.dataset.sidebar = open ? "open" : "closed";
  ui.sidebarToggle.setAttribute("aria-expanded", String(open));
  ui.scrim.hidden = !(open && narrow.matches);
}

function closeSidebarOnPhone() {
  if (narrow.matches) setSidebar(false);
}

function setSettings(open) {
  if (open) settingsPanel.showDefaults(state.models.find((m) => m.id === ui.picker.value));
  ui.settings.hidden = !open;
  ui.settingsToggle.setAttribute("aria-expanded", String(open));
  if (open) ui.settingsForm.elements.system_prompt.focus();
  else ui.settingsToggle.focus();
}

function confirmDialog(message) {
  ui.confirmDialog.querySelector(".confirm-text").textContent = message;
  ui.confirmDialog.returnValue = "";
  ui.confirmDialog.showModal();
  return new Promise((resolve) => {
    ui.confirmDialog.addEventListener("close", () => resolve(ui.confirmDialog.returnValue === "ok"), { once: true });
  });
}

let toastTimer = 0;
function toast(message) {
  ui.toast.textContent = message;
  ui.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { ui.toast.hidden = true; }, 6000);
}

// Asks for an API key once however many calls were refused together; true when one was entered.
// Cancelled, it asks no more until the Sign in button is pressed.
let tokenPrompt = null;
let declined = false;
function askForToken(reason) {
  if (declined) return Promise.resolve(false);
  tokenPrompt ??= (async () => {
    const input = ui.tokenDialog.querySelector("input");
    ui.tokenDialog.querySelector(".token-error").textContent = hasToken() ? reason : "";
    input.value = "";
    ui.tokenDialog.returnValue = "";
    ui.tokenDialog.showModal();
    await new Promise((resolve) => ui.tokenDialog.addEventListener("close", resolve, { once: true }));
    const token = input.value.trim();
    const entered = ui.tokenDialog.returnValue === "ok" && Boolean(token);
    if (entered) setToken(token);
    else declined = true;
    showAccount();
    return entered;
  })().finally(() => {
    tokenPrompt = null;
  });
  return tokenPrompt;
}

function showAccount() {
  ui.signOut.hidden = !hasToken() && !declined;
  ui.signOut.textContent = hasToken() ? "Sign out" : "Sign in";
}

async function signInOrOut() {
  if (hasToken()) {
    setToken(null);
    location.reload();
    return;
  }
  declined = false;
  if (await askForToken("")) location.reload();
}

// Start ------------------------------------------------------------------------------------------

const signin = new SignInFlow(ui.signinDialog, ui.signOut);

const sidebar = new Sidebar(ui.sessionList, {
  onOpen: (id) => openSession(id),
  onDeleted: (id) => {
    if (state.columns.some((c) => c.conversation.session?.id === id)) newChat();
  },
  confirm: confirmDialog,
  onError: toast,
});

const settingsPanel = new SettingsPanel(ui.settingsForm, {
  onApply: async (settings) => {
    const promptChanged = settings.system_prompt !== state.settings.system_prompt;
    state.settings = settings;
    for (const { conversation } of state.columns) {
      if (!conversation.session) continue;
      saveSettings(conversation.session.id, settings);
      if (promptChanged) {
        try {
          await api.updateSession(conversation.session.id, { system_prompt: settings.system_prompt });
        } catch (error) {
          toast(error.message);
        }
      }
    }
  },
});

function route({ push = false } = {}) {
  const match = location.pathname.match(/^\/chat\/([^/]+)$/);
  if (match) openSession(decodeURIComponent(match[1]), { push });
  else newChat({ push });
}

async function start() {
  initThemeToggle($("theme-toggle"));
  ui.sidebarToggle.addEventListener("click", () => setSidebar(ui.app.dataset.sidebar !== "open"));
  ui.scrim.addEventListener("click", () => setSidebar(false));
  ui.newChat.addEventListener("click", () => newChat());
  ui.compareToggle.addEventListener("click", startCompare);
  ui.settingsToggle.addEventListener("click", () => setSettings(ui.settings.hidden));
  ui.settingsClose.addEventListener("click", () => setSettings(false));
  ui.settings.addEventListener("keydown", (event) => {
    if (event.key === "Escape") setSettings(false);
  });
  ui.picker.addEventListener("change", () => {
    settingsPanel.showDefaults(state.models.find((m) => m.id === ui.picker.value));
    if (state.mode === "single") state.columns[0].conversation.model = ui.picker.value;
  });
  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    submitPrompt();
  });
  ui.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submitPrompt();
    }
  });
  ui.prompt.addEventListener("input", autosize);
  ui.stop.addEventListener("click", () => {
    for (const column of state.columns) column.conversation.stop();
  });
  window.addEventListener("popstate", () => route());
  const placeholder = () => {
    ui.prompt.placeholder = narrow.matches ? "Message…" : "Message… (Enter sends, Shift+Enter adds a line)";
  };
  narrow.addEventListener("change", () => {
    setSidebar(!narrow.matches);
    placeholder();
  });
  setSidebar(!narrow.matches);
  placeholder();

  if (!(await signin.prepare())) return; // with OIDC: it signs in first, or says why it cannot
  if (!signin.active) {
    onUnauthorized(askForToken);
    showAccount();
    ui.signOut.addEventListener("click", signInOrOut);
  }
  // A plain button, so that Enter in the key field signs in rather than cancels.
  ui.tokenDialog.querySelector(".token-cancel").addEventListener("click", () => ui.tokenDialog.close("cancel"));
  try {
    const listing = await api.models();
    state.models = listing.models;
    showProblems(ui.modelProblems, listing.problems);
  } catch (error) {
    if (error.status === 401 && signin.active) return; // it signs in again, or says why it cannot
    toast(error.message);
  }
  fillModelPicker(ui.picker, state.models, defaultModelId(state.models));
  api.openapi().then((doc) => settingsPanel.setLimits(limitsFromOpenApi(doc)), () => {});
  sidebar.refresh();
  showSpend($("spend"));
  route();
  ui.prompt.value ||= takeDraft();
  ui.app.dataset.ready = "true";
}

start();
