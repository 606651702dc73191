// Light and dark themes: the system's preference until the person picks one, which is remembered.
import { icon } from "./icons.js";

const KEY = "genai-chatbot.theme";
const media = window.matchMedia("(prefers-color-scheme: dark)");

export function currentTheme() {
  return document.documentElement.dataset.theme || (media.matches ? "dark" : "light");
}

export function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem(KEY, theme);
}

/** Wire the toggle button: its label always names the theme it switches to. */
export function initThemeToggle(button) {
  const update = () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    button.replaceChildren(icon(next === "dark" ? "moon" : "sun"));
    const label = `Switch to ${next} theme`;
    button.setAttribute("aria-label", label);
    button.title = label;
  };
  button.addEventListener("click", () => {
    setTheme(currentTheme() === "dark" ? "light" : "dark");
    update();
  });
  media.addEventListener("change", update);
  update();
}
