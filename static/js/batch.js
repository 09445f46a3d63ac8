// Order progress: rows follow order.updated events for this batch. The consumer sends every row's
// state on each (re)connect, so nothing missed while the socket was down stays stale.
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
    set("broker_orderid", d.broker_orderid || "—");
    set("filled_quantity", String(d.filled_quantity));
    set("average_price", d.average_price || "—");
    set("error", [d.note, d.error].filter(Boolean).join(" · "));
  }
  AM.live(root.dataset.ws, {
    status: document.querySelector("[data-live-status]"),
    onMessage: function (m) { if (m.type === "order.updated") apply(m.data); },
  });
})();
