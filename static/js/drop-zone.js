// A drop zone for a file input: files dropped on the zone become the input's files (the input works without
// JavaScript). Shared by the upload page and the jobs page; loaded before their own scripts.
(function () {
  "use strict";
  window.MedSight = window.MedSight || {};

  // Highlight zone while files are dragged over it; on a drop, give them to input and call chosen().
  window.MedSight.dropZone = function (zone, input, chosen) {
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("is-dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("is-dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        chosen();
      }
    });
  };
})();
