// Live dashboard: account cards and totals follow account.updated events over a Channels WebSocket.
// P&L is the books' own figure (AlgoMirror's fills at live prices, computed by the server as the
// books compute it): read again after each fill and every few seconds while the page is shown.
// The broker's M2M is shown beside it, labelled with the time the broker reported it.
(function () {
  "use strict";
  var grid = document.querySelector("[data-cards]");
  if (!grid) return;

  function setField(card, name, text) {
    var el = card.querySelector('[data-field="' + name + '"]');
    if (el) el.textContent = text;
  }

  function recomputeTotals() {
    var cards = grid.querySelectorAll("[data-account]");
    var cash = 0, used = 0, m2m = 0, connected = 0;
    cards.forEach(function (c) {
      cash += Number(c.dataset.cash || 0);
      used += Number(c.dataset.used || 0);
      m2m += Number(c.dataset.m2m || 0);
      if (c.dataset.status === "connected") connected += 1;
    });
    var set = function (k, v) { var el = document.querySelector('[data-total="' + k + '"]'); if (el) el.textContent = v; };
    set("accounts", String(cards.length));
    set("connected", String(connected));
    set("cash", AM.inr(cash));
    set("used_margin", AM.inr(used));
    set("m2m", AM.inr(m2m));
    var m = document.querySelector('[data-total="m2m"]');
    if (m) AM.signCls(m, m2m);
  }

  // Updates missed while the socket was down: the server renders the cards again.
  function resync() {
    AM.refresh(location.href, ["[data-cards]", "[data-attention-slot]", "[data-totals]"]).then(function () {
      AM.formatTimes(grid);
      recomputeTotals();
    }).catch(function () { /* the next update or reconnect tries again */ });
  }

  function apply(d) {
    var card = grid.querySelector('[data-account="' + d.id + '"]');
    if (!card) { window.location.reload(); return; }  // a new account: render it server-side
    // A new trading state (an exit needing attention moves the account to reducing only): the
    // server renders the cards and the attention banner again, with what trading knows.
    // So does a new order mode (semi-auto found at OpenAlgo) or a broker session found unknown or
    // back: their badges and banners.
    var session = function (s) { return s === "broker_unknown"; };
    if (card.dataset.tradingState !== d.trading_state || card.dataset.orderMode !== d.order_mode ||
        session(card.dataset.status) !== session(d.status)) { resync(); return; }
    card.dataset.cash = d.cash || "";
    card.dataset.used = d.used_margin || "";
    card.dataset.m2m = d.m2m || "";
    card.dataset.status = d.status;
    var badge = card.querySelector('[data-field="status"]');
    if (badge) { badge.className = "badge badge-" + (d.status_badge || d.status); badge.textContent = d.status_label; }
    setField(card, "broker", d.broker || "broker unknown");
    setField(card, "cash", AM.inr(d.cash));
    setField(card, "used_margin", AM.inr(d.used_margin));
    setField(card, "m2m", AM.inr(d.m2m));
    setField(card, "latency", d.latency_ms === null ? "no latency yet" : d.latency_ms + " ms");
    ["checked", "funds_at"].forEach(function (f) {
      var t = card.querySelector('[data-field="' + f + '"]');
      if (t) { t.setAttribute("datetime", d.last_checked_at || ""); t.textContent = AM.istTime(d.last_checked_at); }
    });
    setField(card, "error", d.last_error || "");
    card.classList.add("ring-2", "ring-brand-500/40");
    setTimeout(function () { card.classList.remove("ring-2", "ring-brand-500/40"); }, 600);
    recomputeTotals();
  }

  recomputeTotals();
  AM.live(grid.dataset.ws, {
    status: document.querySelector("[data-live-status]"),
    labels: { connecting: "Live updates: connecting…", connected: "Live updates: on",
      reconnecting: "Live updates: reconnecting…", refused: "Live updates: off (signed out)" },
    onOpen: function (sock, again) { if (again) resync(); },
    onMessage: function (msg) {
      if (msg.type === "account.updated") apply(msg.data);
      else if (msg.type === "position.updated") resyncSoon();  // a fill: P&L as the books now show it
    },
  });
  var soon = null;
  function resyncSoon() {
    if (soon) return;
    soon = setTimeout(function () { soon = null; resync(); }, 300);
  }
  // Prices move between fills: P&L is read again while the page is in view.
  setInterval(function () { if (!document.hidden) resync(); }, 5000);
})();
