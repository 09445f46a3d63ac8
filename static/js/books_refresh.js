// "Read brokers now" without a reload: the request is posted in the background, then the tab's
// broker copies (trades, holdings, funds: each with its "as of" time) are fetched again until
// every copy is newer than before the click, or a while has passed. Without JavaScript the form
// posts and the page comes back as before.
(function () {
  "use strict";
  var form = document.querySelector("form[data-books-refresh]");
  var book = document.querySelector("[data-book]");
  if (!form || !book || book.dataset.book === "positions") return;  // positions follow fills live
  var button = form.querySelector("button");
  var label = button.textContent;

  function stamps() {
    return Array.prototype.map.call(book.querySelectorAll("time[data-copy-at]"), function (t) {
      return t.getAttribute("datetime");
    });
  }

  function newer(before, after) {
    if (!after.length) return false;
    if (after.length !== before.length) return true;
    return after.every(function (v, i) { return v !== before[i]; });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var before = stamps(), tries = 0;
    button.disabled = true;
    button.textContent = "Reading brokers…";
    function done(text) {
      button.disabled = false;
      button.textContent = label;
      book.dataset.refreshed = text;
      var note = document.querySelector("[data-refresh-note]");
      if (note) note.textContent = text;
    }
    function look() {
      tries += 1;
      AM.refresh(location.href, ["[data-book]"]).then(function () {
        AM.formatTimes(book);
        if (newer(before, stamps())) return done("Read just now ✓");
        if (tries >= 20) return done("Some brokers have not answered yet: their last copy is shown with its time.");
        setTimeout(look, 1000);
      }).catch(function () { done("Could not fetch the books again: reload the page."); });
    }
    fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); setTimeout(look, 700); })
      .catch(function () { done("The request did not go through: try again."); });
  });
})();
