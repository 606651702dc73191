// Compare mode: the same prompt sent to two to four models side by side, each streaming in its own column.
//
// Design: one session per column. Each column is an ordinary session with its own model, created on the
// first prompt, so every model continues its *own* conversation (model B never sees model A's answers as
// its history), and Stop, Retry, feedback and the history all work per column through the same public API
// as a single chat, with no server-side notion of a "comparison". Each column's session appears in the
// sidebar and can be reopened alone. The cost: a comparison is not reopened as a group after a reload.
import { byProvider, optionLabel } from "./models.js";

export const MIN_MODELS = 2;
export const MAX_MODELS = 4;

/** Ask for the models to compare in `dialog`; resolves with 2–4 model ids, or null when cancelled. */
export function chooseModels(dialog, models, preselected) {
  const form = dialog.querySelector("form");
  const fieldsets = dialog.querySelector(".compare-models");
  const error = dialog.querySelector(".compare-error");
  const groups = byProvider(models);
  const children = [];
  for (const [provider, list] of groups) {
    const fieldset = document.createElement("fieldset");
    const legend = document.createElement("legend");
    legend.textContent = provider;
    fieldset.append(legend);
    for (const model of list) {
      const label = document.createElement("label");
      label.className = model.available ? "check" : "check disabled";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "model";
      box.value = model.id;
      box.disabled = !model.available;
      box.checked = model.available && preselected.includes(model.id);
      label.append(box, ` ${optionLabel(model)}`);
      fieldset.append(label);
    }
    children.push(fieldset);
  }
  fieldsets.replaceChildren(...children);
  error.textContent = "";

  return new Promise((resolve) => {
    const chosen = () => [...form.querySelectorAll("input[name=model]:checked")].map((b) => b.value);
    const onSubmit = (event) => {
      if (event.submitter?.value === "cancel") return; // the dialog closes by itself
      const ids = chosen();
      if (ids.length < MIN_MODELS || ids.length > MAX_MODELS) {
        event.preventDefault();
        error.textContent = `Choose between ${MIN_MODELS} and ${MAX_MODELS} models (${ids.length} chosen).`;
        return;
      }
      dialog.returnValue = "ok";
    };
    form.addEventListener("submit", onSubmit);
    dialog.addEventListener(
      "close",
      () => {
        form.removeEventListener("submit", onSubmit);
        resolve(dialog.returnValue === "ok" ? chosen() : null);
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
  });
}
