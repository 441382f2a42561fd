/* The light/dark toggle in the header. The choice is remembered in localStorage and
   applied before the first paint by the inline script in base.html; without a choice the
   page follows the system's preference. */
(function () {
  "use strict";
  var KEY = "ft-theme";
  var root = document.documentElement;
  var media = window.matchMedia("(prefers-color-scheme: dark)");

  function current() { return root.dataset.theme || (media.matches ? "dark" : "light"); }

  function show(button) {
    var dark = current() === "dark";
    button.setAttribute("aria-pressed", String(dark));
    button.textContent = dark ? "☀ Light" : "☾ Dark";
    button.title = dark ? "Switch to the light scheme" : "Switch to the dark scheme";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.querySelector(".theme-toggle");
    if (!button) return;
    button.hidden = false;
    show(button);
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem(KEY, next); } catch (e) { /* private mode: not remembered */ }
      show(button);
    });
    media.addEventListener("change", function () { show(button); });
  });
})();
