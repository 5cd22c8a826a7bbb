// Draws the KPI view's monthly charts from the JSON the page embeds with json_script.
(function () {
  "use strict";
  var COLOURS = { segment: "#6366f1", outside: "#94a3b8", all: "#0f766e" };
  var NAMES = { segment: "Segment", outside: "Outside the segment", all: "All customers" };
  function chart(canvasId, data, series, type) {
    var canvas = document.getElementById(canvasId);
    if (!canvas) return;
    var populations = Object.keys(data);
    var labels = data[populations[0]].labels;
    new window.Chart(canvas, {
      type: type,
      data: {
        labels: labels,
        datasets: populations.map(function (p) {
          return { label: NAMES[p] || p, data: data[p][series], backgroundColor: COLOURS[p],
                   borderColor: COLOURS[p], spanGaps: true, maxBarThickness: 28 };
        })
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 scales: { x: { grid: { display: false } } } }
    });
  }
  function draw() {
    var source = document.getElementById("kpi-months");
    if (!source || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    chart("kpi-revenue-chart", data, "revenue", "bar");
    chart("kpi-active-chart", data, "active", "line");
    chart("kpi-aov-chart", data, "aov", "line");
    chart("kpi-nps-chart", data, "nps", "line");
  }
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();
