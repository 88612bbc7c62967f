// Upload page: drag-and-drop, a preview, and progress while the image is sent and classified.
// Without JavaScript the form posts as usual; with it, the same form is sent with XMLHttpRequest.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.FormData || !window.XMLHttpRequest) return;
  var input = document.getElementById("file");
  var zone = document.getElementById("drop-zone");
  var preview = document.getElementById("preview");
  var previewImage = document.getElementById("preview-image");
  var previewName = document.getElementById("preview-name");
  var progressArea = document.getElementById("progress-area");
  var progress = document.getElementById("upload-progress");
  var progressLabel = document.getElementById("progress-label");
  var button = document.getElementById("upload-button");
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;
  var previewUrl = null;

  document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });
  document.querySelectorAll(".no-js").forEach(function (el) { el.hidden = true; });

  // "Classify it as ...": the same form again with the kind the gate saw; the browser still holds the file.
  function reclassify(modality) {
    var radio = document.getElementById("modality-" + modality);
    if (!radio) return;
    radio.checked = true;
    if (input.files && input.files.length) {
      if (form.requestSubmit) { form.requestSubmit(); } else { form.dispatchEvent(new Event("submit", { cancelable: true })); }
    } else {
      input.focus(); // a page the server sent back holds no file: choose it again
    }
  }

  function offerReclassify(region, source) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "button";
    button.id = "reclassify";
    button.textContent = source.textContent;
    var modality = source.getAttribute("data-modality");
    button.addEventListener("click", function () { reclassify(modality); });
    var p = document.createElement("p");
    p.appendChild(button);
    region.appendChild(p);
  }

  var served = document.getElementById("reclassify");
  if (served) {
    served.addEventListener("click", function () { reclassify(served.getAttribute("data-modality")); });
  }

  function showPreview() {
    var file = input.files && input.files[0];
    if (previewUrl) { URL.revokeObjectURL(previewUrl); previewUrl = null; }
    if (!file) { preview.hidden = true; return; }
    previewName.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KB)";
    if (/^image\/(jpeg|png|bmp|webp|gif)$/.test(file.type)) {
      previewUrl = URL.createObjectURL(file);
      previewImage.src = previewUrl;
      previewImage.hidden = false;
    } else {
      previewImage.hidden = true;
    }
    preview.hidden = false;
  }

  input.addEventListener("change", showPreview);
  // A file the browser cannot decode shows its name only, not a broken-image icon.
  previewImage.addEventListener("error", function () { previewImage.hidden = true; });

  window.MedSight.dropZone(zone, input, showPreview);

  function showError(message, offer) {
    var region = document.getElementById("upload-errors");
    if (!region) {
      region = document.createElement("div");
      region.id = "upload-errors";
      region.className = "alert alert-error";
      region.setAttribute("role", "alert");
      form.parentNode.insertBefore(region, form);
    }
    region.textContent = "";
    var p = document.createElement("p");
    p.textContent = message;
    region.appendChild(p);
    if (offer) offerReclassify(region, offer);
    return region;
  }

  function finish() {
    button.disabled = false;
    progressArea.hidden = true;
  }

  form.addEventListener("submit", function (event) {
    var file = input.files && input.files[0];
    if (file && maxBytes && file.size > maxBytes) {
      event.preventDefault();
      showError("The file is larger than " + Math.round(maxBytes / 1048576) + " MB. Choose a smaller image.");
      return;
    }
    event.preventDefault();
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        progress.value = Math.round((e.loaded / e.total) * 100);
        if (e.loaded >= e.total) progressLabel.textContent = "Classifying…";
      }
    });
    xhr.addEventListener("load", function () {
      var landed = xhr.responseURL || "";
      if (xhr.status >= 200 && xhr.status < 300 && landed.indexOf("/predictions/") !== -1) {
        window.location.assign(landed);
        return;
      }
      // A refusal comes back as the upload page with its messages: show them here.
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var region = doc.getElementById("upload-errors");
      var offer = doc.getElementById("reclassify");
      if (region) {
        region.querySelectorAll(".js-only, .no-js").forEach(function (el) { el.remove(); });
      }
      var message = region ? region.textContent.replace(/\s+/g, " ").trim() : "";
      finish();
      if (message) {
        showError(message, offer);
      } else {
        form.submit(); // anything unexpected: let the browser show the server's page
      }
    });
    xhr.addEventListener("error", function () {
      finish();
      showError("The upload did not reach MedSight. Check your connection and try again.");
    });
    button.disabled = true;
    progress.value = 0;
    progressLabel.textContent = "Uploading…";
    progressArea.hidden = false;
    xhr.send(new FormData(form));
  });
})();
