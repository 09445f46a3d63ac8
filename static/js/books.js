// Books, positions tab: every figure follows the live prices (market-data socket) and the fills
// (position.updated on the dashboard socket) without a reload.
//
// Each row carries its raw numbers (data-qty, data-avg, data-realized, data-ltp); the rows, the
// per-account subtotals, the three totals and the "no fresh price" note are all recomputed from
// them with the server's rules (trading/pnl.py, selectors.positions_page): unrealised is
// qty × (ltp − avg), a flat position counts 0, an open position without a fresh price is left out
// of every sum (its realised too) and counted as unpriced — shown as missing, never as 0.
// Display only: exports and risk use the server's Decimal figures.
(function () {
  "use strict";
  var root = document.querySelector("[data-live-positions]");
  if (!root) return;
  var ltps = {}; // key -> last fresh price
  var watched = "";
  var prices = null;

  function rows() { return root.querySelectorAll("tr[data-position]"); }
  function field(el, name) { return el.querySelector('[data-f="' + name + '"]'); }

  // Prices the server rendered were fresh when the page (or fragment) was made; a newer one from
  // the socket wins.
  function adoptRenderedPrices() {
    rows().forEach(function (tr) {
      var k = tr.dataset.position;
      if (tr.dataset.ltp && !(k in ltps)) ltps[k] = Number(tr.dataset.ltp);
    });
  }

  function figures(tr) {
    var qty = Number(tr.dataset.qty), realized = Number(tr.dataset.realized), ltp = ltps[tr.dataset.position];
    var unrealized = qty === 0 ? 0 : ltp === undefined ? null : qty * (ltp - Number(tr.dataset.avg));
    return { open: qty !== 0, ltp: ltp, realized: realized, unrealized: unrealized,
      total: unrealized === null ? null : realized + unrealized };
  }

  function money(el, v) {
    if (!el) return;
    el.textContent = v === null ? "—" : AM.num(v);
    AM.signCls(el, v);
  }

  function paintRow(tr, f) {
    var ltp = field(tr, "ltp");
    ltp.textContent = f.ltp !== undefined ? AM.num(f.ltp) : f.open ? "no fresh price" : "—";
    ltp.classList.toggle("neg", f.ltp === undefined && f.open);
    money(field(tr, "unrealized"), f.unrealized);
    money(field(tr, "total"), f.total);
  }

  function repaint() {
    var all = { realized: 0, unrealized: 0, unpriced: 0 }, accounts = {};
    rows().forEach(function (tr) {
      var f = figures(tr);
      paintRow(tr, f);
      var a = accounts[tr.dataset.accountId] ||
        (accounts[tr.dataset.accountId] = { open: 0, unpriced: 0, realized: 0, unrealized: 0 });
      if (f.open) a.open += 1;
      if (f.unrealized === null) { a.unpriced += 1; all.unpriced += 1; return; }
      a.realized += f.realized; a.unrealized += f.unrealized;
      all.realized += f.realized; all.unrealized += f.unrealized;
    });
    root.querySelectorAll("tr[data-subtotal]").forEach(function (tr) {
      var a = accounts[tr.dataset.subtotal] || { open: 0, unpriced: 0, realized: 0, unrealized: 0 };
      field(tr, "open").textContent = String(a.open);
      var u = field(tr, "unpriced");
      u.textContent = "(" + a.unpriced + " unpriced)";
      u.hidden = a.unpriced === 0;
      field(tr, "realized").textContent = AM.num(a.realized);
      money(field(tr, "unrealized"), a.unrealized);
      money(field(tr, "total"), a.realized + a.unrealized);
    });
    ["realized", "unrealized", "total"].forEach(function (k) {
      var el = root.querySelector('[data-sum="' + k + '"]');
      var v = k === "total" ? all.realized + all.unrealized : all[k];
      if (el) { el.textContent = AM.inr(v); AM.signCls(el, v); }
    });
    var note = root.querySelector("[data-unpriced-note]");
    if (note) {
      note.querySelector('[data-sum="unpriced"]').textContent = String(all.unpriced);
      note.hidden = all.unpriced === 0;
    }
  }

  var pending = false;
  function repaintSoon() { // a burst of ticks is painted once per frame
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; repaint(); });
  }

  function openKeys() {
    var keys = {};
    rows().forEach(function (tr) { if (Number(tr.dataset.qty) !== 0) keys[tr.dataset.position] = true; });
    return Object.keys(keys).sort();
  }

  function watch(force) {
    var keys = openKeys(), sig = keys.join(" ");
    if (!prices || (!force && sig === watched)) return;
    if (prices.send({ action: "watch", symbols: keys.map(function (k) { return { key: k, mode: 1 }; }) })) watched = sig;
  }

  function onPrice(m) {
    if (m.stale || !(m.ltp > 0)) delete ltps[m.key];
    else ltps[m.key] = m.ltp;
  }

  // A row the table does not show (a new position, or one reopened after it went flat): the
  // server renders the live part again, with the same filters and sort as the page.
  var refreshing = null, again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    var url = new URL(location.href);
    url.searchParams.set("fragment", "positions");
    refreshing = fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        root.innerHTML = html;
        adoptRenderedPrices();
        repaint();
        watch(false);
      })
      .catch(function () { /* the next fill or reconnect tries again */ })
      .finally(function () { refreshing = null; if (again) { again = false; refresh(); } });
  }

  function onFill(d) {
    if (root.dataset.account && String(d.account_id) !== root.dataset.account) return;
    var tr = root.querySelector('tr[data-account-id="' + d.account_id + '"][data-position="' + CSS.escape(d.key) +
      '"][data-product="' + CSS.escape(d.product) + '"]');
    var close = tr && tr.querySelector("[data-close]");
    if (!tr || (d.quantity !== 0 && !close)) { refresh(); return; }
    tr.dataset.qty = d.quantity;
    tr.dataset.avg = d.average_price;
    tr.dataset.realized = d.realized;
    var qty = field(tr, "qty");
    qty.textContent = String(d.quantity);
    qty.classList.toggle("neg", d.quantity < 0);
    field(tr, "avg").textContent = AM.num(d.average_price);
    field(tr, "realized").textContent = AM.num(d.realized);
    if (close) {
      close.hidden = d.quantity === 0;
      close.title = close.dataset.confirmTpl.replace("{qty}", String(d.quantity)); // the server asks to confirm
    }
    repaint();
    watch(false);
  }

  adoptRenderedPrices();
  repaint();
  var status = function (name) { return document.querySelector('[data-live-status="' + name + '"]'); };
  prices = AM.live(root.dataset.ws, {
    status: status("prices"),
    heartbeatMs: 60000,
    onOpen: function () { watch(true); }, // the consumer answers a watch with the current prices
    onMessage: function (m) {
      if (m.type === "price") onPrice(m);
      else if (m.type === "prices") m.items.forEach(onPrice);
      else return;
      repaintSoon();
    },
  });
  AM.live(root.dataset.fillsWs, {
    status: status("fills"),
    onOpen: function (sock, reconnected) { if (reconnected) refresh(); }, // fills missed while away
    onMessage: function (m) { if (m.type === "position.updated") onFill(m.data); },
  });
})();
