// Result page: the heatmap's opacity slider (without JavaScript the heatmap shows at full strength).
(function () {
  "use strict";
  var slider = document.getElementById("heatmap-slider");
  var range = document.getElementById("heatmap-opacity");
  var heatmap = document.getElementById("heatmap");
  if (!slider || !range || !heatmap) return;
  slider.hidden = false;
  function apply() {
    heatmap.style.opacity = String(range.value / 100);
    range.setAttribute("aria-valuetext", range.value + "%");
  }
  range.addEventListener("input", apply);
  apply();
})();
