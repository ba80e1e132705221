/* patchledger UI: charts from data-* attributes and the ledger verification button.
   No inline script anywhere (the pages' CSP forbids it). */
(function () {
  "use strict";
  var palette = ["#8b1a1a", "#b34700", "#7a6200", "#2f5d8a", "#555555", "#2e6b2e"];

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  function charts(root) {
    if (typeof Chart === "undefined") { return; }
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (canvas.dataset.drawn) { return; }
      canvas.dataset.drawn = "1";
      var labels = JSON.parse(canvas.dataset.labels || "[]");
      var values = JSON.parse(canvas.dataset.values || "[]");
      new Chart(canvas, {
        type: canvas.dataset.chart,
        data: { labels: labels, datasets: [{ label: canvas.dataset.label || "", data: values,
                backgroundColor: palette.slice(0, values.length) }] },
        options: { animation: false, responsive: true, plugins: { legend: { display: false } },
                   scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    });
  }

  function verify(root) {
    var button = root.querySelector("#verify");
    if (!button || button.dataset.bound) { return; }
    button.dataset.bound = "1";
    button.addEventListener("click", function () {
      var out = document.getElementById("verify-result");
      out.textContent = "Verifying…";
      button.disabled = true;
      fetch(button.dataset.url, { method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify({}) })
        .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
        .then(function (pair) {
          var status = pair[0], doc = pair[1];
          if (status !== 200) {
            out.textContent = "Verification unavailable (" + status + "): " +
              ((doc.error && doc.error.message) || "");
          } else if (doc.ok) {
            out.textContent = "Ledger verified: blocks " + doc.start + " to " + doc.stop + ", " +
              doc.transactions_checked + " transactions, last block hash " + doc.last_block_hash;
          } else {
            out.textContent = "INCONSISTENT at block " + doc.inconsistency.block_number + " (" +
              doc.inconsistency.check + "): " + doc.inconsistency.message;
          }
          out.dataset.ok = String(status === 200 && doc.ok);
        })
        .catch(function (e) { out.textContent = "Verification failed: " + e; })
        .finally(function () { button.disabled = false; });
    });
  }

  function enhance(root) { charts(root); verify(root); }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (e) { enhance(e.target); });
  document.addEventListener("htmx:configRequest", function (e) {
    e.detail.headers["X-CSRFToken"] = csrf();
  });
})();
