// Small stroke icons drawn inline (no icon font, no request): each is a list of SVG path commands.
const PATHS = {
  menu: ["M4 6h16", "M4 12h16", "M4 18h16"],
  plus: ["M12 5v14", "M5 12h14"],
  pencil: ["M4 20h4L19 9l-4-4L4 16v4z", "M13.5 6.5l4 4"],
  trash: ["M4 7h16", "M9 7V4h6v3", "M6 7l1 13h10l1-13"],
  up: ["M7 11v9H4v-9h3z", "M7 11l4-8c1.5 0 2.5 1 2.5 2.5V9h5a2 2 0 0 1 2 2.3l-1.2 7A2 2 0 0 1 17.3 20H7"],
  down: ["M7 13V4H4v9h3z", "M7 13l4 8c1.5 0 2.5-1 2.5-2.5V15h5a2 2 0 0 0 2-2.3l-1.2-7A2 2 0 0 0 17.3 4H7"],
  send: ["M4 12l16-8-6 16-3-7-7-1z"],
  stop: ["M7 7h10v10H7z"],
  sun: ["M12 8a4 4 0 1 0 0 8a4 4 0 1 0 0-8z", "M12 2v2", "M12 20v2", "M2 12h2", "M20 12h2", "M4.9 4.9l1.4 1.4", "M17.7 17.7l1.4 1.4", "M4.9 19.1l1.4-1.4", "M17.7 6.3l1.4-1.4"],
  moon: ["M20 14.5A8 8 0 0 1 9.5 4a8 8 0 1 0 10.5 10.5z"],
  sliders: ["M4 6h10", "M18 6h2", "M4 12h4", "M12 12h8", "M4 18h12", "M20 18h0", "M16 4v4", "M10 10v4", "M18 16v4"],
  columns: ["M4 4h16v16H4z", "M12 4v16"],
  retry: ["M4 12a8 8 0 1 0 2.3-5.7", "M4 4v4h4"],
  close: ["M6 6l12 12", "M18 6L6 18"],
};

/** An `<svg>` icon; decorative (aria-hidden): the button carrying it has the accessible name. */
export function icon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("class", "icon");
  for (const d of PATHS[name]) {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", d);
    svg.append(path);
  }
  return svg;
}

/** A button with an icon and a visible or visually hidden label. */
export function iconButton(name, label, { className = "icon-button", showLabel = false } = {}) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.append(icon(name));
  const text = document.createElement("span");
  text.textContent = label;
  if (!showLabel) text.className = "visually-hidden";
  button.append(text);
  return button;
}
