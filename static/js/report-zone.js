// Report (PDF) links ask for the reader's own time zone (?tz=) and the note beside them says so; without
// JavaScript the report's times are in UTC, as the note says.
(function () {
  "use strict";
  var zone;
  try {
    zone = new Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (error) {
    return;
  }
  // An IANA name, as the server takes it (Europe/Paris, America/Argentina/Buenos_Aires, Etc/GMT+5).
  if (!zone || !/^[A-Za-z0-9_+\-\/]{1,64}$/.test(zone)) return;
  document.querySelectorAll("a[data-report-zone]").forEach(function (link) {
    var url = new URL(link.getAttribute("href"), document.baseURI);
    url.searchParams.set("tz", zone);
    link.setAttribute("href", url.pathname + url.search);
    var note = document.getElementById(link.getAttribute("data-report-zone"));
    if (note) note.textContent = "The report gives times in your time zone (" + zone + ").";
  });
})();
