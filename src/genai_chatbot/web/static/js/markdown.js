// Model output as Markdown: parsed by marked, sanitised by DOMPurify, code highlighted by highlight.js.
// Nothing a model writes can run: DOMPurify strips scripts and event handlers, and the page's
// Content-Security-Policy refuses inline script anyway. Elements that would fetch something by themselves
// (images, media, styles) are removed too, so an answer cannot make the browser call another host.
// Chromium logs a CSP "inline event handler" report when DOMPurify's inert DOMParser document meets an
// `on…` attribute: that is the policy refusing it, not code running (the browser tests assert nothing ran).
import { DOMPurify, hljs, Marked } from "/static/vendor/vendor.js";

const marked = new Marked({ gfm: true, breaks: true, async: false });
marked.use({
  renderer: {
    // A Markdown image becomes a link to it: loading it would be a request to a host the model chose.
    image({ href, text }) {
      const label = text || href;
      return `<a href="${escapeAttr(href)}">${escapeHtml(`[image: ${label}]`)}</a>`;
    },
  },
});

const SANITIZE = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "video", "audio", "source", "picture", "iframe", "object", "embed", "link", "meta", "base"],
  FORBID_ATTR: ["style", "srcset", "background", "poster"],
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function escapeAttr(text) {
  return escapeHtml(String(text ?? ""));
}

/** Replace the children of `element` with `text` rendered as safe Markdown. */
export function renderMarkdown(element, text) {
  const fragment = DOMPurify.sanitize(marked.parse(text), SANITIZE);
  for (const code of fragment.querySelectorAll("pre > code")) decorateCode(code);
  element.replaceChildren(fragment);
}

function decorateCode(code) {
  const language = [...code.classList].find((c) => c.startsWith("language-"))?.slice(9);
  if (language && hljs.getLanguage(language)) {
    code.innerHTML = hljs.highlight(code.textContent, { language, ignoreIllegals: true }).value;
  } else {
    code.innerHTML = hljs.highlightAuto(code.textContent).value;
  }
  code.classList.add("hljs");
  const pre = code.parentElement;
  const wrapper = document.createElement("div");
  wrapper.className = "code-block";
  const bar = document.createElement("div");
  bar.className = "code-bar";
  const name = document.createElement("span");
  name.textContent = language || "code";
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "copy-code";
  copy.textContent = "Copy";
  copy.setAttribute("aria-label", `Copy ${language || ""} code`.replace("  ", " "));
  bar.append(name, copy);
  pre.replaceWith(wrapper);
  wrapper.append(bar, pre);
}

// One listener for every copy button, present or future: answers are re-rendered while they stream.
document.addEventListener("click", async (event) => {
  const button = event.target.closest?.(".copy-code");
  if (!button) return;
  const code = button.closest(".code-block").querySelector("code").textContent;
  try {
    await navigator.clipboard.writeText(code);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
});
