// Order progress: rows follow order.updated events for this batch.
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
    set("broker_orderid", d.broker_orderid || "—");
    set("filled_quantity", String(d.filled_quantity));
    set("average_price", d.average_price || "—");
    set("error", [d.note, d.error].filter(Boolean).join(" · "));
  }
  var retry = 1000;
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + root.dataset.ws);
    ws.onopen = function () { retry = 1000; };
    ws.onmessage = function (ev) { var m = JSON.parse(ev.data); if (m.type === "order.updated") apply(m.data); };
    ws.onclose = function () { setTimeout(connect, retry); retry = Math.min(retry * 2, 30000); };
  }
  connect();
})();
