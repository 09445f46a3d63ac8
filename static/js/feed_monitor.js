// Feed monitor: polls the feed's status JSON every 2 s. The server words everything (headline,
// badge, each event's title and detail); this only puts the words on the page.
(function () {
  "use strict";
  var root = document.querySelector("[data-feed]");
  if (!root) return;
  function esc(s) { var d = document.createElement("div"); d.textContent = s == null ? "" : String(s); return d.innerHTML; }
  function put(name, text) { var el = document.querySelector('[data-s="' + name + '"]'); if (el) el.textContent = text; }
  function badge(cls, text) {
    var el = document.querySelector('[data-s="badge"]');
    if (el) { el.className = "badge " + cls; el.textContent = text; }
  }
  function render(d) {
    var s = d.status || {};
    put("headline", s.headline || "Feed not running");
    badge(s.badge_class || "badge-down", s.badge || "Down");
    put("ticks_per_s", s.ticks_per_s == null ? "0" : String(s.ticks_per_s));
    put("last_tick_age_s", s.last_tick_age_s == null ? "—" : s.last_tick_age_s + " s ago");
    put("market", d.market ? d.market.label : "—");
    put("count", String((s.subscribed || []).length));
    var ul = document.querySelector('[data-s="subscribed"]');
    if (ul) ul.innerHTML = (s.subscribed || []).map(function (k) { return "<li>" + esc(k) + "</li>"; }).join("") ||
      "<li class='text-slate-400'>None: nothing on screen needs a live price.</li>";
    var tb = document.querySelector('[data-s="events"]');
    if (tb) tb.innerHTML = (d.events || []).map(function (e) {
      return "<tr><td class='whitespace-nowrap text-xs'>" + esc(AM.istTime(new Date(e.ts).toISOString())) + "</td><td>" +
        esc(e.title) + "</td><td class='text-xs'>" + esc(e.detail) + "</td></tr>";
    }).join("") || "<tr><td colspan='3' class='text-slate-400'>Nothing yet.</td></tr>";
  }
  function poll() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).then(function (r) { return r.json(); }).then(render)
      .catch(function () { put("headline", "This page lost contact with AlgoMirror; retrying…"); badge("badge-down", "Down"); });
  }
  document.querySelectorAll("time[data-ms]").forEach(function (t) { t.textContent = AM.istTime(new Date(Number(t.dataset.ms)).toISOString()); });
  poll();
  setInterval(poll, 2000);
})();
