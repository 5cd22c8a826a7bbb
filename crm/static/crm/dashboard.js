// Draws the dashboard's charts from the JSON the page embeds with json_script: the revenue
// bars of the sales widgets, and any canvas naming its data in data-line-chart (one line per
// series), such as the marketing dashboard's segment growth.
(function () {
  "use strict";
  var COLOURS = ["#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#8b5cf6", "#64748b"];
  function number(v) { return Number(v).toLocaleString(); }
  function revenue() {
    var canvas = document.getElementById("revenue-chart");
    var source = document.getElementById("revenue-data");
    if (!canvas || !source) return;
    var data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: "Revenue", data: data.values, backgroundColor: "#6366f1", borderRadius: 4, maxBarThickness: 36 }]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: { legend: { display: false } },
        scales: {
          x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true } },
          y: { beginAtZero: true, ticks: { callback: number } }
        }
      }
    });
  }
  function lines() {
    var canvases = document.querySelectorAll("canvas[data-line-chart]");
    Array.prototype.forEach.call(canvases, function (canvas) {
      var source = document.getElementById(canvas.getAttribute("data-line-chart"));
      if (!source) return;
      var data = JSON.parse(source.textContent);
      new window.Chart(canvas, {
        type: "line",
        data: {
          labels: data.labels,
          datasets: data.series.map(function (s, i) {
            var colour = COLOURS[i % COLOURS.length];
            return { label: s.label, data: s.values, borderColor: colour, backgroundColor: colour, spanGaps: true, tension: 0.2, pointRadius: 2 };
          })
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
          scales: {
            x: { grid: { display: false }, ticks: { maxRotation: 0, autoSkip: true } },
            y: { beginAtZero: true, ticks: { callback: number } }
          }
        }
      });
    });
  }
  function draw() {
    if (typeof window.Chart === "undefined") return;
    revenue();
    lines();
  }
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();
