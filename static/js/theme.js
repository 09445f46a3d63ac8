// Runs in <head> so the saved theme applies before first paint (no flash). No inline scripts: CSP.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("am-theme"); } catch (e) { /* storage disabled */ }
  var dark = saved ? saved === "dark" : window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
})();
