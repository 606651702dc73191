// The model picker: models grouped by provider; unavailable ones shown disabled, with their reason.

/** Show the model list's problems (a keys source that cannot be read…) in `banner`, or hide it when none. */
export function showProblems(banner, problems) {
  const items = (problems || []).map((problem) => {
    const item = document.createElement("li");
    item.textContent = problem;
    return item;
  });
  banner.querySelector("ul").replaceChildren(...items);
  banner.hidden = items.length === 0;
}

/** `models` grouped by provider, in the order the server listed them. */
export function byProvider(models) {
  const groups = new Map();
  for (const model of models) {
    if (!groups.has(model.provider)) groups.set(model.provider, []);
    groups.get(model.provider).push(model);
  }
  return groups;
}

/** Fill `select` with `models`, one <optgroup> per provider; select `selectedId` when it is available. */
export function fillModelPicker(select, models, selectedId) {
  const groups = byProvider(models);
  const children = [];
  for (const [provider, list] of groups) {
    const group = document.createElement("optgroup");
    group.label = provider;
    for (const model of list) {
      const option = new Option(optionLabel(model), model.id);
      option.disabled = !model.available;
      if (!model.available) option.title = model.unavailable_reason || "unavailable";
      group.append(option);
    }
    children.push(group);
  }
  select.replaceChildren(...children);
  selectModel(select, models, selectedId);
}

export function selectModel(select, models, modelId) {
  const wanted = models.find((m) => m.id === modelId && m.available);
  const fallback = models.find((m) => m.default && m.available) || models.find((m) => m.available);
  const chosen = wanted || fallback;
  if (chosen) select.value = chosen.id;
}

export function optionLabel(model) {
  const name = model.display_name && model.display_name !== model.id ? `${model.display_name} (${model.id})` : model.id;
  return model.available ? name : `${name} — unavailable: ${model.unavailable_reason || "no reason given"}`;
}

export function defaultModelId(models) {
  return (models.find((m) => m.default && m.available) || models.find((m) => m.available) || {}).id || null;
}
