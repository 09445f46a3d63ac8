// One live connection to the server (Channels WebSocket): reconnects after a drop with capped
// exponential backoff and jitter (so pages reopened by a restarted server do not all come back in
// the same instant), shows its state in the page, and calls onOpen on every (re)connect so a page
// can ask again for what it watches and re-read what it may have missed while it was away.
//
//   var sock = AM.live("/ws/dashboard/", {
//     status: el,                          // element whose text and data-live-state follow the socket
//     labels: {connected: "live"},         // text per state: connecting, connected, reconnecting, refused
//     onOpen: function (sock, again) {},   // again: false the first time, true after a reconnect
//     onMessage: function (msg) {},        // each JSON message
//     heartbeatMs: 60000,                  // send {"action": "heartbeat"} this often while open
//   });
//   sock.send({action: "watch", ...});     // false when not connected (onOpen sends it again)
(function () {
  "use strict";
  var AM = (window.AM = window.AM || {});
  var FIRST_RETRY_MS = 1000, MAX_RETRY_MS = 30000;
  var LABELS = { connecting: "connecting…", connected: "live", reconnecting: "reconnecting…", refused: "not signed in" };
  var REFUSED = 4403; // the consumers' "not yours / not signed in": retrying cannot help

  AM.live = function (path, opts) {
    opts = opts || {};
    var labels = Object.assign({}, LABELS, opts.labels || {});
    var ws = null, attempts = 0, opened = false, hb = null, timer = null, stopped = false;

    function show(state) {
      var el = opts.status;
      if (!el) return;
      el.dataset.liveState = state;
      el.textContent = labels[state];
      el.classList.toggle("pos", state === "connected");
      el.classList.toggle("neg", state === "reconnecting" || state === "refused");
    }

    function retryDelay() {
      var ceiling = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * Math.pow(2, attempts));
      attempts += 1;
      return ceiling / 2 + Math.random() * ceiling / 2; // "equal jitter": never sooner than half the step
    }

    function connect() {
      timer = null;
      var proto = location.protocol === "https:" ? "wss://" : "ws://";
      ws = new WebSocket(proto + location.host + path);
      ws.onopen = function () {
        var again = opened;
        attempts = 0;
        opened = true;
        show("connected");
        if (opts.heartbeatMs) hb = setInterval(function () { handle.send({ action: "heartbeat" }); }, opts.heartbeatMs);
        if (opts.onOpen) opts.onOpen(handle, again);
      };
      ws.onmessage = function (ev) {
        if (opts.onMessage) opts.onMessage(JSON.parse(ev.data));
      };
      ws.onclose = function (ev) {
        if (hb) { clearInterval(hb); hb = null; }
        ws = null;
        if (stopped) return;
        if (ev.code === REFUSED) { show("refused"); return; }
        show(opened ? "reconnecting" : "connecting");
        timer = setTimeout(connect, retryDelay());
      };
    }

    var handle = {
      send: function (obj) {
        if (!ws || ws.readyState !== WebSocket.OPEN) return false;
        ws.send(JSON.stringify(obj));
        return true;
      },
      close: function () {
        stopped = true;
        if (timer) clearTimeout(timer);
        if (ws) ws.close();
      },
    };
    show("connecting");
    connect();
    return handle;
  };

  // Replace parts of this page with the same parts of a fresh copy of `url` (the server renders
  // them; no second template in JavaScript). Resolves with the replaced elements, in order.
  AM.refresh = function (url, selectors) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        return selectors.map(function (sel) {
          var here = document.querySelector(sel), there = doc.querySelector(sel);
          if (here && there) here.innerHTML = there.innerHTML;
          return here;
        });
      });
  };
})();
