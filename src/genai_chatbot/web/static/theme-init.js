// Runs before the first paint (a classic script in <head>) so a remembered theme never flashes.
(function () {
  var theme = localStorage.getItem("genai-chatbot.theme");
  if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
})();
