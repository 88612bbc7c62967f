// Times are written in UTC by the server (<time datetime="…">… UTC</time>); show them in the reader's own zone.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat("en-GB", {
    day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short"
  });
  function localise(root) {
    var times = root.querySelectorAll("time[data-utc]");
    for (var i = 0; i < times.length; i++) {
      var moment = new Date(times[i].getAttribute("datetime"));
      if (isNaN(moment.getTime())) { continue; }
      times[i].title = times[i].textContent;
      times[i].textContent = format.format(moment);
      times[i].removeAttribute("data-utc");
    }
  }
  document.addEventListener("DOMContentLoaded", function () { localise(document); });
})();
