// The larger view of a result's image: zoom and pan by mouse wheel, drag, pinch and keys (+, -, 0, arrows); the
// heatmap's strength; brightness and contrast (level and window) for grey-scale kinds. Without JavaScript the page
// shows both images at their own size, with links to each.
(function () {
  "use strict";
  var viewer = document.getElementById("viewer");
  var stage = document.getElementById("viewer-stage");
  var layer = document.getElementById("viewer-layer");
  var photo = document.getElementById("viewer-photo");
  var heatmap = document.getElementById("viewer-heatmap");
  if (!viewer || !stage || !layer || !photo) return;

  var STEP = 1.25; // one press of a zoom key or button
  var PAN_STEP = 48; // screen pixels per arrow key press
  var MOST_SCREEN_PIXELS_PER_IMAGE_PIXEL = 16;
  var width = Number(viewer.getAttribute("data-width")) || 0;
  var height = Number(viewer.getAttribute("data-height")) || 0;
  var scale = 1, fit = 1, x = 0, y = 0;
  var scaleOutput = document.getElementById("viewer-scale");

  function stageSize() {
    return { w: stage.clientWidth, h: stage.clientHeight };
  }

  function limits() {
    return { least: Math.min(fit, 1), most: Math.max(fit * 4, MOST_SCREEN_PIXELS_PER_IMAGE_PIXEL) };
  }

  // Smaller than the stage, the image sits in its middle; larger, its edges never come inside the stage.
  function keepInView() {
    var size = stageSize();
    var shownW = width * scale, shownH = height * scale;
    x = shownW <= size.w ? (size.w - shownW) / 2 : Math.min(0, Math.max(size.w - shownW, x));
    y = shownH <= size.h ? (size.h - shownH) / 2 : Math.min(0, Math.max(size.h - shownH, y));
  }

  function render() {
    keepInView();
    layer.style.transform = "translate(" + x.toFixed(2) + "px, " + y.toFixed(2) + "px) scale(" + scale.toFixed(4) + ")";
    viewer.classList.toggle("is-magnified", scale > 1.001);
    if (scaleOutput) scaleOutput.textContent = Math.round((scale / fit) * 100) + "%";
    viewer.setAttribute("data-scale", scale.toFixed(4));
  }

  // Zoom by factor keeping the image point under (atX, atY), in stage pixels, where it is.
  function zoomAt(factor, atX, atY) {
    var bounds = limits();
    var next = Math.min(bounds.most, Math.max(bounds.least, scale * factor));
    x = atX - ((atX - x) * next) / scale;
    y = atY - ((atY - y) * next) / scale;
    scale = next;
    render();
  }

  function zoomCentre(factor) {
    var size = stageSize();
    zoomAt(factor, size.w / 2, size.h / 2);
  }

  // As tall as the image needs at the stage's width, within the CSS's least and most (no wide black bands).
  function sizeStage() {
    var style = getComputedStyle(stage);
    var least = parseFloat(style.minHeight) || 0;
    var most = Math.min(window.innerHeight * 0.7, parseFloat(style.maxHeight) || Infinity);
    stage.style.height = Math.round(Math.max(least, Math.min(most, (stage.clientWidth * height) / width))) + "px";
  }

  function fitToStage() {
    var size = stageSize();
    fit = Math.min(size.w / width, size.h / height) || 1;
    scale = fit;
    render();
  }

  function start() {
    width = width || photo.naturalWidth;
    height = height || photo.naturalHeight;
    if (!width || !height) return;
    viewer.classList.add("is-live");
    layer.style.width = width + "px";
    layer.style.height = height + "px";
    stage.tabIndex = 0;
    document.getElementById("viewer-controls").hidden = false;
    document.getElementById("viewer-keys").hidden = false;
    sizeStage();
    fitToStage();
    wire();
  }

  function wire() {
    var keys = {
      "+": function () { zoomCentre(STEP); },
      "=": function () { zoomCentre(STEP); },
      "-": function () { zoomCentre(1 / STEP); },
      "_": function () { zoomCentre(1 / STEP); },
      "0": fitToStage,
      ArrowLeft: function () { x += PAN_STEP; render(); },
      ArrowRight: function () { x -= PAN_STEP; render(); },
      ArrowUp: function () { y += PAN_STEP; render(); },
      ArrowDown: function () { y -= PAN_STEP; render(); }
    };
    stage.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || !keys[event.key]) return;
      event.preventDefault();
      keys[event.key]();
    });

    viewer.querySelectorAll("[data-zoom]").forEach(function (button) {
      var action = button.getAttribute("data-zoom");
      button.addEventListener("click", function () {
        if (action === "in") zoomCentre(STEP);
        else if (action === "out") zoomCentre(1 / STEP);
        else fitToStage();
      });
    });

    stage.addEventListener("wheel", function (event) {
      event.preventDefault();
      var lines = event.deltaMode === 1 ? 16 : event.deltaMode === 2 ? stage.clientHeight : 1;
      var box = stage.getBoundingClientRect();
      zoomAt(Math.exp(-event.deltaY * lines * 0.002), event.clientX - box.left, event.clientY - box.top);
    }, { passive: false });

    stage.addEventListener("dblclick", function (event) {
      var box = stage.getBoundingClientRect();
      zoomAt(2, event.clientX - box.left, event.clientY - box.top);
    });

    // One pointer drags; two (a pinch) zoom about their midpoint and move with it.
    var pointers = {};
    function spread() {
      var ids = Object.keys(pointers);
      if (ids.length < 2) return null;
      var a = pointers[ids[0]], b = pointers[ids[1]];
      return { distance: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
    }
    stage.addEventListener("pointerdown", function (event) {
      try {
        stage.setPointerCapture(event.pointerId);
      } catch (error) {
        // A pointer the browser no longer counts as down: moves outside the stage are simply not followed.
      }
      pointers[event.pointerId] = { x: event.clientX, y: event.clientY };
      stage.classList.add("is-dragging");
    });
    stage.addEventListener("pointermove", function (event) {
      var before = pointers[event.pointerId];
      if (!before) return;
      var pinchBefore = spread();
      pointers[event.pointerId] = { x: event.clientX, y: event.clientY };
      var pinchNow = spread();
      if (pinchBefore && pinchNow) {
        var box = stage.getBoundingClientRect();
        x += pinchNow.x - pinchBefore.x;
        y += pinchNow.y - pinchBefore.y;
        if (pinchBefore.distance > 0) {
          zoomAt(pinchNow.distance / pinchBefore.distance, pinchNow.x - box.left, pinchNow.y - box.top);
        } else {
          render();
        }
      } else if (!pinchBefore) {
        x += event.clientX - before.x;
        y += event.clientY - before.y;
        render();
      }
    });
    function release(event) {
      delete pointers[event.pointerId];
      if (!Object.keys(pointers).length) stage.classList.remove("is-dragging");
    }
    stage.addEventListener("pointerup", release);
    stage.addEventListener("pointercancel", release);

    window.addEventListener("resize", sizeStage);
    // A new stage size keeps the zoom relative to the fitted size; the pan is kept within bounds.
    if (window.ResizeObserver) {
      var last = stageSize();
      new ResizeObserver(function () {
        var size = stageSize();
        if (size.w === last.w && size.h === last.h) return;
        last = size;
        var relative = scale / fit;
        fit = Math.min(size.w / width, size.h / height) || 1;
        scale = fit * relative;
        render();
      }).observe(stage);
    }

    wireSliders();
  }

  function wireSliders() {
    var strength = document.getElementById("viewer-heatmap-strength");
    if (strength && heatmap) {
      var showStrength = function () {
        heatmap.style.opacity = String(strength.value / 100);
        strength.setAttribute("aria-valuetext", strength.value + "%");
      };
      strength.addEventListener("input", showStrength);
      showStrength();
    }
    var brightness = document.getElementById("viewer-brightness");
    var contrast = document.getElementById("viewer-contrast");
    if (brightness && contrast) {
      var adjust = function () {
        photo.style.filter = "brightness(" + brightness.value / 100 + ") contrast(" + contrast.value / 100 + ")";
        brightness.setAttribute("aria-valuetext", brightness.value + "%");
        contrast.setAttribute("aria-valuetext", contrast.value + "%");
      };
      brightness.addEventListener("input", adjust);
      contrast.addEventListener("input", adjust);
      var reset = document.getElementById("viewer-adjust-reset");
      if (reset) {
        reset.addEventListener("click", function () {
          brightness.value = 100;
          contrast.value = 100;
          adjust();
        });
      }
      adjust();
    }
  }

  if (width && height) start();
  else if (photo.complete && photo.naturalWidth) start();
  else photo.addEventListener("load", start, { once: true });
})();
