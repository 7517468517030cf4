// Every page: keep the browser's time zone in the `browser_tz` cookie, so the server can show
// times in it (the operator's choice "auto", the default). On the first visit, or when the zone
// changed, the page is rendered again once in that zone (this file runs first, in <head>, so
// the reload comes before the page's other files are asked for). The texts come from the page
// (<script type="application/json" id="console-messages">), i.e. from the one message catalogue.
(function () {
  "use strict";
  var root = document.documentElement;
  var zone = "";
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (ignored) {
    zone = "";
  }
  if (!/^[A-Za-z][A-Za-z0-9_+\-]*(\/[A-Za-z0-9_+\-]+){0,2}$/.test(zone)) {
    return;
  }
  var current = (document.cookie.match(/(?:^|; )browser_tz=([^;]*)/) || [])[1];
  if (current !== zone) {
    document.cookie = "browser_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
    var kept = (document.cookie.match(/(?:^|; )browser_tz=([^;]*)/) || [])[1] === zone;
    if (kept && root.dataset.tzChoice === "auto" && root.dataset.tz !== zone && !window.location.search.match(/cursor=/)) {
      window.location.reload();
    }
  }
})();

window.consoleMessages = (function () {
  "use strict";
  var messages = null;
  return function (key, params) {
    if (messages === null) {  // read once the page is parsed (this file runs in <head>)
      var holder = document.getElementById("console-messages");
      messages = holder ? JSON.parse(holder.textContent) : {};
    }
    var text = Object.prototype.hasOwnProperty.call(messages, key) ? messages[key] : key;
    Object.keys(params || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(params[name]));
    });
    return text;
  };
})();
