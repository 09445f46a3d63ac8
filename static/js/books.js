// Books, positions tab: LTP, unrealised and total P&L follow the market-data WebSocket.
// Display only — the server's Decimal figures (pnl.py) are what exports and risk use; a price
// the server marks stale is shown as missing, never as 0.
(function () {
  "use strict";
  var root = document.querySelector("[data-live-positions]");
  if (!root) return;
  var rows = {};
  root.querySelectorAll("tr[data-position]").forEach(function (tr) {
    if (Number(tr.dataset.qty) === 0) return; // flat: nothing moves with the price
    var k = tr.dataset.position;
    (rows[k] = rows[k] || []).push(tr);
  });
  var keys = Object.keys(rows);
  var num = new Intl.NumberFormat("en-IN", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var fmt = function (v) { return num.format(v); };
  var ltps = {};
  function paint(el, v) {
    el.textContent = fmt(v);
    el.classList.toggle("neg", v < 0);
    el.classList.toggle("pos", v > 0);
  }
  function totals() {
    var unrl = 0, total = 0;
    root.querySelectorAll("tr[data-position]").forEach(function (tr) {
      var qty = Number(tr.dataset.qty), realized = Number(tr.dataset.realized), ltp = ltps[tr.dataset.position];
      if (qty !== 0 && ltp === undefined) return; // unpriced: left out, as on the server
      var u = qty === 0 ? 0 : qty * (ltp - Number(tr.dataset.avg));
      unrl += u;
      total += realized + u;
    });
    var u = document.querySelector("[data-unrealized]"), t = document.querySelector("[data-total]");
    if (u) { paint(u, unrl); u.textContent = "₹" + u.textContent; }
    if (t) { paint(t, total); t.textContent = "₹" + t.textContent; }
  }
  function apply(m) {
    var trs = rows[m.key];
    if (!trs) return;
    if (m.stale || !(m.ltp > 0)) { delete ltps[m.key]; return; }
    ltps[m.key] = m.ltp;
    trs.forEach(function (tr) {
      var qty = Number(tr.dataset.qty);
      var u = qty === 0 ? 0 : qty * (m.ltp - Number(tr.dataset.avg));
      tr.querySelector('[data-f="ltp"]').textContent = fmt(m.ltp);
      paint(tr.querySelector('[data-f="unrealized"]'), u);
      paint(tr.querySelector('[data-f="total"]'), Number(tr.dataset.realized) + u);
    });
  }
  var retry = 1000, hb = null, pending = false;
  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + root.dataset.ws);
    ws.onopen = function () {
      retry = 1000;
      ws.send(JSON.stringify({ action: "watch", symbols: keys.map(function (k) { return { key: k, mode: 1 }; }) }));
      hb = setInterval(function () { ws.send(JSON.stringify({ action: "heartbeat" })); }, 60000);
    };
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type === "price") apply(m);
      else if (m.type === "prices") m.items.forEach(apply);
      else return;
      if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; totals(); }); }
    };
    ws.onclose = function () {
      if (hb) clearInterval(hb);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }
  if (keys.length) connect();

  // A fill changed a position (pushed on the dashboard socket): reload once things settle.
  var reloadAt = null;
  (function fills() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/ws/dashboard/");
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type !== "position.updated") return;
      if (reloadAt) clearTimeout(reloadAt);
      reloadAt = setTimeout(function () { location.reload(); }, 800);
    };
    ws.onclose = function () { setTimeout(fills, 5000); };
  })();
})();
