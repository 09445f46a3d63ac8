// A mirrored order's page: rows follow order.updated events for this batch, and the per-account
// summary (with its Retry buttons) and the group actions are rendered again by the server after
// each burst of updates, so what the page says is what the server now knows. The consumer sends
// every row's state on each (re)connect, so nothing missed while the socket was down stays stale.
(function () {
  "use strict";
  var root = document.querySelector("[data-batch]");
  if (!root) return;
  function apply(d) {
    var tr = root.querySelector('[data-order="' + d.id + '"]');
    if (!tr) return;
    var set = function (f, v) { var el = tr.querySelector('[data-f="' + f + '"]'); if (el) el.textContent = v; };
    var badge = tr.querySelector('[data-f="status"]');
    if (badge) { badge.className = "badge status-" + d.status; badge.textContent = d.status_label; }
    tr.classList.toggle("row-attention", d.status === "attention");  // an exit that could not be placed
    set("quantity", String(d.quantity));
    set("terms", d.pricetype + (d.price ? " @ " + d.price : "") + (d.trigger_price ? " trg " + d.trigger_price : "") +
      " · " + d.product);
    set("broker_orderid", d.broker_orderid || "—");
    set("filled_quantity", String(d.filled_quantity));
    set("average_price", d.average_price || "—");
    set("error", [d.note, d.error].filter(Boolean).join(" · "));
  }

  var timer = null, busy = false, again = false;
  function refreshSummary() {
    if (busy) { again = true; return; }
    busy = true;
    AM.refresh(location.href, ["[data-summary]", "[data-group-actions]"])
      .catch(function () { /* the next update or reconnect tries again */ })
      .finally(function () { busy = false; if (again) { again = false; refreshSummary(); } });
  }
  function summarySoon() { // a burst of updates (a snapshot, a fan-out) is read once
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () { timer = null; refreshSummary(); }, 250);
  }

  AM.live(root.dataset.ws, {
    status: document.querySelector("[data-live-status]"),
    onMessage: function (m) {
      if (m.type !== "order.updated") return;
      apply(m.data);
      summarySoon();
    },
  });
})();
