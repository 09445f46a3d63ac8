// Numbers and times as the server prints them (core.money, core.timefmt): Indian grouping
// (12,34,567.89), rounded half away from zero, "-" only when the rounded figure is below zero, "—"
// when there is no number; money with its symbol as "−₹1,561.25"; instants as
// "02 Dec 2026, 10:32:29 IST". core/tests/test_format_js.py runs one table through both.
(function () {
  "use strict";
  var AM = (window.AM = window.AM || {});

  function group(whole) {
    if (whole.length <= 3) return whole;
    var head = whole.slice(0, -3), tail = whole.slice(-3), parts = [];
    while (head.length > 2) { parts.unshift(head.slice(-2)); head = head.slice(0, -2); }
    if (head) parts.unshift(head);
    parts.push(tail);
    return parts.join(",");
  }

  AM.num = function (v, places) {
    if (places === undefined) places = 2;
    if (v === null || v === undefined || v === "") return "—";
    var n = Number(v);
    if (!isFinite(n)) return "—";
    // Shift the decimal point in the text, not by multiplying: 1.005 * 100 is 100.49999999999999.
    var shown = Math.abs(n).toPrecision(15);
    var units = Math.round(Number(shown + "e" + places));
    if (!isFinite(units)) units = Math.round(Math.abs(n) * Math.pow(10, places));
    var digits = String(units);
    while (digits.length <= places) digits = "0" + digits;
    var whole = places ? digits.slice(0, -places) : digits;
    var text = group(whole) + (places ? "." + digits.slice(-places) : "");
    return (n < 0 && units !== 0 ? "-" : "") + text;
  };

  // A true minus (U+2212) before the symbol: "₹-1,561.25" reads as a typo.
  AM.inr = function (v) {
    var s = AM.num(v);
    if (s === "—") return s;
    return s.charAt(0) === "-" ? "\u2212₹" + s.slice(1) : "₹" + s;
  };

  // IST is UTC+05:30 all year (no daylight saving), so the wall clock is plain arithmetic: no
  // dependence on the browser's locale data ("Sept" or "Sep", "a.m." or "AM").
  var MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  var IST_MS = 330 * 60 * 1000;
  function two(n) { return (n < 10 ? "0" : "") + n; }

  // An ISO time (or a Date, or epoch ms) as "02 Dec 2026, 10:32:29 IST"; `empty` (default "—")
  // when there is none, and text that is no time as it came.
  AM.ist = function (t, empty) {
    if (empty === undefined) empty = "—";
    if (t === null || t === undefined || t === "") return empty;
    var d = t instanceof Date ? t : new Date(t);
    if (isNaN(d.getTime())) return String(t);
    var x = new Date(Math.floor(d.getTime() / 1000) * 1000 + IST_MS);
    return two(x.getUTCDate()) + " " + MONTHS[x.getUTCMonth()] + " " + x.getUTCFullYear() + ", " +
      two(x.getUTCHours()) + ":" + two(x.getUTCMinutes()) + ":" + two(x.getUTCSeconds()) + " IST";
  };
  // Times a live update brings that may not have happened yet ("checked: not yet").
  AM.istTime = function (iso) { return AM.ist(iso, "not yet"); };

  // The sign colour the server gives a money figure (presenters.sign_cls), judged on the figure as
  // shown: a sum that is -0.000000001 in floating point is 0.00, not red.
  AM.signCls = function (el, v) {
    var s = AM.num(v);
    el.classList.toggle("neg", s.charAt(0) === "-");
    el.classList.toggle("pos", s.charAt(0) !== "-" && /[1-9]/.test(s));
  };
})();
