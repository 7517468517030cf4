// The overview's chart: events per minute by outcome over the last hour, drawn with uPlot from
// the series the page carries in <script type="application/json" id="events-series">; minutes
// in the operator's time zone, labels from the message catalogue.
(function () {
  "use strict";
  var holder = document.getElementById("events-chart");
  var source = document.getElementById("events-series");
  if (!holder || !source || typeof uPlot === "undefined") {
    return;
  }
  var t = window.consoleMessages;
  var zone = document.documentElement.dataset.tz || "UTC";
  var series = JSON.parse(source.textContent);
  var colours = { applied: "#2e7d32", duplicate: "#757575", rejected: "#c62828" };
  var outcomes = ["applied", "duplicate", "rejected"];

  // Minutes in the operator's zone (the page's), as every time on the page.
  var clock = new Intl.DateTimeFormat(document.documentElement.lang || "en", {
    hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone
  });

  function hhmm(seconds) {
    return clock.format(new Date(seconds * 1000));
  }

  function options(width) {
    return {
      width: width,
      height: 260,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(5, max)]; } } },
      axes: [
        { values: function (u, splits) { return splits.map(hhmm); } },
        { label: t("js.events_per_minute"), size: 60 }
      ],
      series: [{
        label: t("js.minute") + " (" + zone + ")",
        value: function (u, v) { return v == null ? "--" : hhmm(v); }
      }].concat(outcomes.map(function (name) {
        return { label: t("outcome." + name), stroke: colours[name], width: 2, points: { show: false } };
      }))
    };
  }

  var data = [series.t].concat(outcomes.map(function (name) { return series[name]; }));
  var plot = new uPlot(options(Math.max(320, holder.clientWidth)), data, holder);
  holder.dataset.rendered = "true";
  window.addEventListener("resize", function () {
    plot.setSize({ width: Math.max(320, holder.clientWidth), height: 260 });
  });
})();
