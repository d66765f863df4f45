// Shows an event's time in the visitor's own zone when it differs from the event's, and remembers
// the zone in a cookie so the server can render it next time. The page works without this file.
(function () {
  "use strict";
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone) { return; }
  if (document.cookie.indexOf("tz=" + zone) === -1) {
    document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; samesite=lax";
  }
  var lang = document.documentElement.lang || undefined;
  document.querySelectorAll("[data-local-time]").forEach(function (node) {
    var start = new Date(node.getAttribute("data-start"));
    var end = new Date(node.getAttribute("data-end"));
    var options = { dateStyle: "full", timeStyle: "short", timeZone: zone };
    var text = new Intl.DateTimeFormat(lang, options).format(start) + " – " +
      new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone: zone }).format(end) + " (" + zone + ")";
    var eventZone = node.getAttribute("data-event-zone");
    var probe = { timeStyle: "short", dateStyle: "short" };
    var inEventZone = new Intl.DateTimeFormat("en", Object.assign({ timeZone: eventZone }, probe)).format(start);
    var inViewerZone = new Intl.DateTimeFormat("en", Object.assign({ timeZone: zone }, probe)).format(start);
    if (inEventZone === inViewerZone) { return; }
    node.textContent = node.getAttribute("data-label") + " " + text;
    node.hidden = false;
  });
})();
