// The overview's chart: events per minute by outcome over the last hour, drawn with uPlot from
// the series the page carries in <script type="application/json" id="events-series">.
(function () {
  "use strict";
  var holder = document.getElementById("events-chart");
  var source = document.getElementById("events-series");
  if (!holder || !source || typeof uPlot === "undefined") {
    return;
  }
  var series = JSON.parse(source.textContent);
  var colours = { applied: "#2e7d32", duplicate: "#757575", rejected: "#c62828" };
  var outcomes = ["applied", "duplicate", "rejected"];

  function hhmm(seconds) {
    return new Date(seconds * 1000).toISOString().slice(11, 16);
  }

  function options(width) {
    return {
      width: width,
      height: 260,
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(5, max)]; } } },
      axes: [
        { values: function (u, splits) { return splits.map(hhmm); } },
        { label: "events / minute", size: 60 }
      ],
      series: [{
        label: "minute (UTC)",
        value: function (u, v) { return v == null ? "--" : hhmm(v); }
      }].concat(outcomes.map(function (name) {
        return { label: name, stroke: colours[name], width: 2, points: { show: false } };
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
