// Jobs page: drop an archive on the form (the file input works without JavaScript), and a size check first.
(function () {
  "use strict";
  var form = document.getElementById("job-form");
  if (!form) return;
  var input = document.getElementById("job-file");
  var zone = document.getElementById("job-drop-zone");
  var chosen = document.getElementById("job-file-chosen");
  var button = document.getElementById("job-button");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;

  form.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });

  function total() {
    var sum = 0;
    for (var i = 0; i < input.files.length; i++) sum += input.files[i].size;
    return sum;
  }

  function describe() {
    var files = input.files;
    if (!files || !files.length) { chosen.textContent = ""; return; }
    var size = Math.max(1, Math.round(total() / 1024));
    chosen.textContent = (files.length === 1 ? files[0].name : files.length + " files") + " (" + size + " KB)";
  }

  input.addEventListener("change", describe);
  window.MedSight.dropZone(zone, input, describe);

  form.addEventListener("submit", function (event) {
    if (maxBytes && input.files && total() > maxBytes) {
      event.preventDefault();
      chosen.textContent = "The archive is larger than " + Math.round(maxBytes / 1048576) + " MB, the most one job may be.";
      return;
    }
    button.disabled = true;
    button.textContent = "Sending…";
  });
})();
