// The settings of a chat: system prompt, sampling parameters and streaming, validated before use.
// The numeric limits are read from the API's own OpenAPI schema (MessageCreate), so the page refuses
// exactly what the API would refuse; the fallback below mirrors them for a server without /openapi.json.

const FALLBACK_LIMITS = {
  temperature: { minimum: 0, maximum: 2 },
  top_p: { exclusiveMinimum: 0, maximum: 1 },
  max_tokens: { minimum: 1 },
};
const LABELS = { temperature: "Temperature", top_p: "Top-p", max_tokens: "Max tokens" };
const INTEGER = new Set(["max_tokens"]);
const KEY = (sessionId) => `genai-chatbot.settings.${sessionId}`;

export const DEFAULT_SETTINGS = { system_prompt: "", temperature: null, top_p: null, max_tokens: null, stream: true };

/** The limits of MessageCreate's sampling fields, from the OpenAPI document. */
export function limitsFromOpenApi(document) {
  const properties = document?.components?.schemas?.MessageCreate?.properties;
  if (!properties) return FALLBACK_LIMITS;
  const limits = {};
  for (const name of Object.keys(FALLBACK_LIMITS)) {
    const schema = properties[name];
    const numeric = (schema?.anyOf || [schema]).find((s) => s && (s.type === "number" || s.type === "integer")) || {};
    const { minimum, maximum, exclusiveMinimum, exclusiveMaximum } = numeric;
    limits[name] = Object.fromEntries(
      Object.entries({ minimum, maximum, exclusiveMinimum, exclusiveMaximum }).filter(([, v]) => v !== undefined),
    );
  }
  return limits;
}

/** The reason `raw` is not a valid value of field `name` under `limits`, or null when it is. */
export function problem(name, raw, limits) {
  if (raw === "") return null;
  const value = Number(raw);
  const label = LABELS[name];
  if (!Number.isFinite(value)) return `${label} must be a number.`;
  if (INTEGER.has(name) && !Number.isInteger(value)) return `${label} must be a whole number.`;
  const { minimum, maximum, exclusiveMinimum, exclusiveMaximum } = limits[name] || {};
  const low = minimum ?? exclusiveMinimum;
  const high = maximum ?? exclusiveMaximum;
  const tooLow = (minimum !== undefined && value < minimum) || (exclusiveMinimum !== undefined && value <= exclusiveMinimum);
  const tooHigh = (maximum !== undefined && value > maximum) || (exclusiveMaximum !== undefined && value >= exclusiveMaximum);
  if (tooLow || tooHigh) {
    if (low !== undefined && high !== undefined) {
      const from = exclusiveMinimum !== undefined ? `greater than ${low}` : `between ${low}`;
      return exclusiveMinimum !== undefined ? `${label} must be ${from} and at most ${high}.` : `${label} must be ${from} and ${high}.`;
    }
    return exclusiveMinimum !== undefined ? `${label} must be greater than ${low}.` : `${label} must be at least ${low}.`;
  }
  return null;
}

export function loadSettings(sessionId) {
  try {
    const stored = sessionId && JSON.parse(localStorage.getItem(KEY(sessionId)) || "null");
    return stored ? { ...DEFAULT_SETTINGS, ...stored } : null;
  } catch {
    return null;
  }
}

export function saveSettings(sessionId, settings) {
  if (sessionId) localStorage.setItem(KEY(sessionId), JSON.stringify(settings));
}

/** The generation fields of a message request for these settings (unset ones are left to the server). */
export function requestFields(settings) {
  const fields = { stream: settings.stream };
  for (const name of ["temperature", "top_p", "max_tokens"]) {
    if (settings[name] !== null && settings[name] !== undefined) fields[name] = settings[name];
  }
  return fields;
}

/**
 * What field `name` falls back to when left empty, for `model` (an entry of GET /api/models):
 * `short` for the field's placeholder, `long` for its hint. null defaults are the provider API's own.
 */
export function defaultText(name, model) {
  if (name === "max_tokens") return { short: "default", long: "the server's default" };
  const defaults = model?.defaults;
  const value = defaults?.[name];
  if (value === null || value === undefined) {
    const whose = defaults ? "the provider's own default" : "the model's default";
    const unused = name !== "temperature" && defaults?.temperature === 0 ? " (unused while temperature is 0)" : "";
    return { short: "default", long: whose + unused };
  }
  if (name !== "temperature") return { short: `default ${value}`, long: `the model's default, ${value}` };
  const penalty = defaults.repeat_penalty != null && defaults.repeat_penalty !== 1 ? defaults.repeat_penalty : null;
  const greedy = value === 0 ? "greedy" : null;
  const notes = [greedy, penalty !== null ? `repeat penalty ${penalty}` : null].filter(Boolean).join(", ");
  return {
    short: `default ${value}${greedy ? " (greedy)" : ""}`,
    long: `the model's default, ${value}${notes ? ` (${notes})` : ""}`,
  };
}

/** The settings form: shows a chat's settings and calls `onApply(settings)` only with valid values. */
export class SettingsPanel {
  constructor(form, { onApply }) {
    this.form = form;
    this.onApply = onApply;
    this.limits = FALLBACK_LIMITS;
    this.model = null;
    for (const name of Object.keys(FALLBACK_LIMITS)) {
      form.elements[name].addEventListener("input", () => this.check(name));
    }
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const settings = this.read();
      if (settings) this.onApply(settings);
    });
  }

  setLimits(limits) {
    this.limits = limits;
    for (const [name, limit] of Object.entries(limits)) {
      const input = this.form.elements[name];
      const low = limit.minimum ?? limit.exclusiveMinimum;
      const high = limit.maximum ?? limit.exclusiveMaximum;
      if (low !== undefined) input.min = String(low);
      if (high !== undefined) input.max = String(high);
    }
    this.showHints();
  }

  /** Show what each empty field means for `model` (an entry of GET /api/models): its default sampling. */
  showDefaults(model) {
    this.model = model || null;
    this.showHints();
  }

  showHints() {
    for (const name of Object.keys(FALLBACK_LIMITS)) {
      const fallback = defaultText(name, this.model);
      this.form.elements[name].placeholder = fallback.short;
      const hint = this.form.querySelector(`#${name}-hint`);
      if (hint) hint.textContent = rangeText(this.limits[name] || {}, INTEGER.has(name), fallback.long);
    }
  }

  show(settings) {
    const elements = this.form.elements;
    elements.system_prompt.value = settings.system_prompt || "";
    for (const name of ["temperature", "top_p", "max_tokens"]) {
      elements[name].value = settings[name] ?? "";
      this.check(name);
    }
    elements.stream.checked = settings.stream !== false;
    this.form.querySelector(".settings-status").textContent = "";
  }

  check(name) {
    const input = this.form.elements[name];
    const message = problem(name, input.value.trim(), this.limits);
    const error = this.form.querySelector(`#${name}-error`);
    error.textContent = message || "";
    input.setAttribute("aria-invalid", message ? "true" : "false");
    return message;
  }

  /** The form's settings, or null (errors shown, first invalid field focused) when any is invalid. */
  read() {
    const elements = this.form.elements;
    const invalid = Object.keys(FALLBACK_LIMITS).filter((name) => this.check(name));
    const status = this.form.querySelector(".settings-status");
    if (invalid.length) {
      status.textContent = "Not applied: fix the highlighted fields.";
      elements[invalid[0]].focus();
      return null;
    }
    const number = (name) => (elements[name].value.trim() === "" ? null : Number(elements[name].value));
    status.textContent = "Applied to this chat.";
    return {
      system_prompt: elements.system_prompt.value,
      temperature: number("temperature"),
      top_p: number("top_p"),
      max_tokens: number("max_tokens"),
      stream: elements.stream.checked,
    };
  }
}

function rangeText(limit, integer, fallback) {
  const parts = [];
  if (limit.minimum !== undefined) parts.push(`≥ ${limit.minimum}`);
  if (limit.exclusiveMinimum !== undefined) parts.push(`> ${limit.exclusiveMinimum}`);
  if (limit.maximum !== undefined) parts.push(`≤ ${limit.maximum}`);
  if (limit.exclusiveMaximum !== undefined) parts.push(`< ${limit.exclusiveMaximum}`);
  return `${integer ? "Whole number, " : ""}${parts.join(", ")}; empty for ${fallback}.`;
}
