// "Test connection": pings the OpenAlgo server with what the form holds, fills the broker name.
(function () {
  "use strict";
  var form = document.querySelector("[data-account-form]");
  if (!form) return;
  var btn = form.querySelector("[data-test-connection]");
  var out = form.querySelector("[data-test-result]");
  btn.addEventListener("click", function () {
    var body = new FormData();
    body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    body.append("host_url", form.querySelector("[name=host_url]").value);
    body.append("api_key", form.querySelector("[name=api_key]").value);
    if (form.dataset.accountId) body.append("account_id", form.dataset.accountId);
    var send = form.querySelector("[name=send_stored_key]");
    if (send && send.checked) body.append("send_stored_key", "1");
    out.className = "text-sm text-slate-500";
    out.textContent = "Testing…";
    btn.disabled = true;
    fetch(form.dataset.testUrl, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        out.className = "text-sm " + (d.ok ? "pos" : "neg");
        out.textContent = d.ok ? "Connected to " + d.broker + " in " + d.latency_ms + " ms" : d.message;
        if (d.ok && d.broker) form.querySelector("[name=broker]").value = d.broker;
        if (d.reauthenticate) {
          var a = document.createElement("a");
          a.href = d.reauthenticate;
          a.textContent = " Confirm your password";
          out.appendChild(a);
        }
      })
      .catch(function () { out.className = "text-sm neg"; out.textContent = "The test request failed."; })
      .finally(function () { btn.disabled = false; });
  });
})();
