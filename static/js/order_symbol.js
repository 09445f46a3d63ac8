// Order form: the symbol upper-cased as typed, and checked against a broker's /symbol while the
// trader fills the form (lot size, tick size, last price), so a wrong exchange shows before submit.
(function () {
  "use strict";
  var out = document.querySelector("[data-symbol-check]");
  var form = out && out.closest("form");
  if (!form) return;
  var symbol = form.querySelector("[name=symbol]");
  var exchange = form.querySelector("[name=exchange]");
  var timer = null, asked = "";

  function show(text, cls) { out.textContent = text; out.className = "mb-4 text-sm " + (cls || ""); }

  function check() {
    var s = symbol.value.trim().toUpperCase();
    if (!s) { show(""); return; }
    var q = new URLSearchParams({ symbol: s, exchange: exchange.value });
    form.querySelectorAll("[name=accounts]:checked").forEach(function (cb) { q.append("accounts", cb.value); });
    var url = out.dataset.url + "?" + q.toString();
    if (url === asked) return;
    asked = url;
    show("Checking " + s + " on " + exchange.value + "…", "text-slate-500");
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        if (url !== asked) return;  // an older answer after a newer question
        if (d.ok === true) {
          var parts = [d.symbol + " on " + d.exchange, "lot size " + d.lotsize];
          if (d.tick_size) parts.push("tick ₹" + d.tick_size);
          if (d.ltp) parts.push("last " + AM.inr(d.ltp));
          show(parts.join(" · ") + " (checked on " + d.checked_on + ")", "pos");
        } else {
          show(d.message, d.ok === false ? "neg" : "text-slate-500");
        }
      })
      .catch(function () { show("Could not check the symbol now; it is checked again when you place the order.", "text-slate-500"); });
  }

  function soon() { clearTimeout(timer); timer = setTimeout(check, 350); }
  symbol.addEventListener("input", function () {
    var at = symbol.selectionStart;
    symbol.value = symbol.value.toUpperCase();
    symbol.setSelectionRange(at, at);
    soon();
  });
  exchange.addEventListener("change", soon);
  form.querySelectorAll("[name=accounts]").forEach(function (cb) { cb.addEventListener("change", soon); });
  if (symbol.value && !out.textContent.trim()) check();
})();
