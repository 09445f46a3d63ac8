// Option chain: live cells from the market-data WebSocket, stale marking, PCR, depth on click.
(function () {
  "use strict";
  var root = document.querySelector("[data-chain]");
  if (!root) return;
  var maxAgeMs = Number(root.dataset.maxAge || 10) * 1000;
  var live = document.querySelector("[data-live]");
  var cells = {};  // key -> {field: [td]}
  root.querySelectorAll("[data-k]").forEach(function (td) {
    var k = td.dataset.k;
    (cells[k] = cells[k] || {});
    (cells[k][td.dataset.f] = cells[k][td.dataset.f] || []).push(td);
  });
  var spotKey = root.dataset.spotKey;
  var last = {};   // key -> last record
  var seen = {};   // key -> time the record was received (ms)
  var int = function (v) { return AM.num(v, 0); };
  function set(k, f, text, cls) {
    (cells[k] && cells[k][f] || []).forEach(function (td) {
      if (td.textContent !== text) {
        td.textContent = text;
        if (cls) { td.classList.remove("flash-up", "flash-down"); void td.offsetWidth; td.classList.add(cls); }
      }
    });
  }
  var money = AM.num;
  function apply(m) {
    var k = m.key, prev = last[k];
    last[k] = m;
    seen[k] = m.stale ? 0 : Date.now();
    if (k === spotKey) {
      var s = document.querySelector("[data-spot]");
      if (s) s.textContent = money(m.ltp);
      moveAtm(m.ltp);
      return;
    }
    var dir = prev && m.ltp > prev.ltp ? "flash-up" : (prev && m.ltp < prev.ltp ? "flash-down" : null);
    set(k, "ltp", money(m.ltp), dir);
    if (m.change !== undefined) set(k, "change", (m.change > 0 ? "+" : "") + AM.num(m.change));
    if (m.bid !== undefined) set(k, "bidq", money(m.bid) + " (" + int(m.bid_qty || 0) + ")");
    if (m.ask !== undefined) set(k, "askq", money(m.ask) + " (" + int(m.ask_qty || 0) + ")");
    if (m.bid !== undefined && m.ask !== undefined) set(k, "spread", AM.num(m.ask - m.bid));
    if (m.volume !== undefined) set(k, "volume", int(m.volume));
    if (m.oi !== undefined) set(k, "oi", int(m.oi));
    if (depthKey === k) showDepth(k);
    markStale();
  }
  function markStale() {
    var now = Date.now();
    Object.keys(cells).forEach(function (k) {
      var stale = !seen[k] || now - seen[k] > maxAgeMs;
      (cells[k].ltp || []).forEach(function (td) { td.classList.toggle("stale", stale); });
    });
    var ce = 0, pe = 0;
    Object.keys(last).forEach(function (k) {
      if (k.slice(-2) === "CE") ce += last[k].oi || 0;
      if (k.slice(-2) === "PE") pe += last[k].oi || 0;
    });
    var pcr = document.querySelector("[data-pcr]");
    if (pcr && ce > 0) pcr.textContent = (pe / ce).toFixed(2);
  }
  setInterval(markStale, 1000);

  // The ATM row and the ITM tint follow the live spot, not the page-load snapshot.
  var rows = Array.prototype.slice.call(root.querySelectorAll("tbody tr"));
  function moveAtm(spotPrice) {
    var best = null, bestDist = Infinity;
    rows.forEach(function (tr) {
      var k = Number(tr.dataset.strike), d = Math.abs(k - spotPrice);
      if (d < bestDist) { best = tr; bestDist = d; }
    });
    if (!best) return;
    var atm = Number(best.dataset.strike);
    var label = document.querySelector("[data-atm]");
    if (label) label.textContent = String(atm);
    rows.forEach(function (tr) {
      var k = Number(tr.dataset.strike);
      tr.classList.toggle("atm-row", tr === best);
      tr.querySelectorAll("td.ltp").forEach(function (td, i) {
        td.classList.toggle("itm", i === 0 ? k < atm : k > atm);  // calls ITM below, puts above
      });
    });
  }

  var depthKey = null, panel = document.querySelector("[data-depth-panel]");
  function showDepth(k) {
    var rows = document.querySelector("[data-depth-rows]");
    var d = last[k] && last[k].depth;
    document.querySelector("[data-depth-title]").textContent = "Depth · " + k.split(":")[1];
    if (!d) { rows.innerHTML = "<tr><td colspan='4'>Waiting for the next tick…</td></tr>"; return; }
    var html = "";
    for (var i = 0; i < 5; i++) {
      var b = d.buy[i] || [null, null], a = d.sell[i] || [null, null];
      html += "<tr><td class='num pos'>" + money(b[0]) + "</td><td class='num'>" + (b[1] === null ? "" : int(b[1])) +
        "</td><td class='num neg'>" + money(a[0]) + "</td><td class='num'>" + (a[1] === null ? "" : int(a[1])) + "</td></tr>";
    }
    rows.innerHTML = html;
  }
  root.addEventListener("click", function (ev) {
    var td = ev.target.closest("[data-depth]");
    if (!td) return;
    depthKey = td.dataset.depth;
    panel.classList.remove("hidden");
    showDepth(depthKey);
  });
  var closeBtn = document.querySelector("[data-depth-close]");
  if (closeBtn) closeBtn.addEventListener("click", function () { panel.classList.add("hidden"); depthKey = null; });

  AM.live(root.dataset.ws, {
    status: live,
    labels: { connected: "live" },
    heartbeatMs: 60000,
    onOpen: function (sock) { // the consumer answers a watch with the current prices
      var symbols = Object.keys(cells).map(function (k) { return { key: k, mode: 3 }; });
      symbols.push({ key: spotKey, mode: 1 });
      sock.send({ action: "watch", symbols: symbols });
    },
    onMessage: function (m) {
      if (m.type === "price") apply(m);
      else if (m.type === "prices") m.items.forEach(apply);
    },
  });
})();
