// Shared page behaviour: theme toggle, message auto-dismiss, IST clock and times
// (numbers and time formats: format.js; live connections: live.js).
(function () {
  "use strict";
  var IST = "Asia/Kolkata";

  var AM = (window.AM = window.AM || {});
  AM.formatTimes = function (root) {
    (root || document).querySelectorAll("time[datetime]").forEach(function (t) {
      var iso = t.getAttribute("datetime");
      if (iso) t.textContent = AM.istTime(iso);
    });
  };

  document.querySelectorAll("[data-theme-toggle]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var next = document.documentElement.getAttribute("data-theme") === "dark" ? "light" : "dark";
      document.documentElement.setAttribute("data-theme", next);
      try { localStorage.setItem("am-theme", next); } catch (e) { /* ignore */ }
    });
  });

  // A page holding one-time tokens (forms that place orders) and restored from the back-forward
  // cache would post its old tokens again, which the server takes for a repeat of what they
  // placed before: fetch the page afresh instead (a GET, new tokens).
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted && document.querySelector("[data-confirm-dialog]")) return; // a POST's page: a repeat is a repeat
    if (ev.persisted && document.querySelector('[name="client_token"]')) location.replace(location.href);
  });

  // The confirmation before money moves (rendered open by the server, so it works without this):
  // shown as a modal dialog, focus on its confirm button; Esc or Back/Edit cancels — back to the
  // page it came from, or to the order form to edit it.
  document.querySelectorAll("dialog[data-confirm-dialog]").forEach(function (d) {
    if (typeof d.showModal !== "function") return;
    d.close();
    d.showModal();
    var ok = d.querySelector("[data-confirm-ok]");
    if (ok) ok.focus();
    function cancel() {
      d.close();
      if (d.dataset.back) location.assign(d.dataset.back);
    }
    d.addEventListener("cancel", function (ev) { ev.preventDefault(); cancel(); });
    var back = d.querySelector("[data-confirm-cancel]");
    if (back) back.addEventListener("click", function (ev) { ev.preventDefault(); cancel(); });
    if (ok) ok.form.addEventListener("submit", function () { ok.disabled = true; ok.textContent = "Sending…"; });
  });

  // Forms that move money ask first (CSP forbids inline handlers, so this is the one place).
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (ev) {
      if (!window.confirm(f.getAttribute("data-confirm"))) ev.preventDefault();
    });
  });
  // Row buttons of long tables share one hidden form (one CSRF token per page, not per row).
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button[data-confirm]");
    if (b && !b.form?.hasAttribute("data-confirm") && !window.confirm(b.getAttribute("data-confirm"))) ev.preventDefault();
  });

  var msgs = document.querySelector("[data-messages]");
  if (msgs && !msgs.querySelector(".msg-error")) {
    setTimeout(function () { msgs.remove(); }, 6000);
  }

  var clock = document.querySelector("[data-clock]");
  function tick() {
    var now = new Date();
    if (clock) clock.textContent = now.toLocaleString("en-IN", { timeZone: IST, weekday: "short" }) + " " + AM.ist(now);
  }
  tick();
  setInterval(tick, 1000);
  AM.formatTimes();
})();
