// Numbers as the server prints them (core.money.inr): Indian grouping (12,34,567.89), rounded half
// away from zero, "-" only when the rounded figure is below zero, "—" when there is no number.
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

  AM.inr = function (v) {
    var s = AM.num(v);
    return s === "—" ? s : "₹" + s;
  };

  // The sign colour the server gives a money figure (presenters.sign_cls), judged on the figure as
  // shown: a sum that is -0.000000001 in floating point is 0.00, not red.
  AM.signCls = function (el, v) {
    var s = AM.num(v);
    el.classList.toggle("neg", s.charAt(0) === "-");
    el.classList.toggle("pos", s.charAt(0) !== "-" && /[1-9]/.test(s));
  };
})();
