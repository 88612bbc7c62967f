// Job page: the bar, counts and estimate follow the job without reloading, by polling the page's JSON.
// Without JavaScript the page refreshes itself while the job runs (and has a Refresh link).
(function () {
  "use strict";
  var root = document.getElementById("job-progress");
  if (!root || !window.fetch || root.getAttribute("data-active") !== "true") return;
  var url = root.getAttribute("data-progress-url");
  var interval = parseInt(root.getAttribute("data-poll-ms"), 10) || 2000;
  var bar = document.getElementById("job-bar");

  function show(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = String(text);
  }

  function update(job) {
    bar.max = job.total || 1;
    bar.value = job.total ? job.settled : 1;
    bar.textContent = job.percent + "%";
    show("job-status", job.status_text);
    show("job-percent", job.percent + "%");
    show("job-settled", job.settled);
    show("job-total", job.total);
    show("job-scored", job.scored);
    show("job-failed", job.failed);
    show("job-flagged", job.flagged);
    show("job-eta", job.eta_text);
  }

  function finished(job) {
    show("job-finished", job.status_text + ". Loading the results…");
    // The lists of flagged, uncertain and failed items are drawn by the server: load them once.
    window.setTimeout(function () { window.location.reload(); }, 800);
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (job) {
        update(job);
        if (job.active) {
          window.setTimeout(poll, interval);
        } else {
          finished(job);
        }
      })
      .catch(function () { window.setTimeout(poll, interval * 5); });
  }

  window.setTimeout(poll, interval);
})();
