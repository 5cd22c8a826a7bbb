// Draws the forecast chart (weighted pipeline, learned forecast, won, target per month) from the page's JSON.
(function () {
  "use strict";
  function draw() {
    var canvas = document.getElementById("forecast-chart");
    var source = document.getElementById("forecast-data");
    if (!canvas || !source || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Weighted pipeline", data: data.weighted, backgroundColor: "#a5b4fc", borderRadius: 4 },
          { label: "Learned forecast", data: data.predicted, backgroundColor: "#6366f1", borderRadius: 4 },
          { label: "Won", data: data.won, backgroundColor: "#16a34a", borderRadius: 4 },
          { label: "Target", data: data.target, type: "line", borderColor: "#f59e0b", backgroundColor: "#f59e0b", pointRadius: 3 }
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { grid: { display: false } },
          y: { beginAtZero: true, ticks: { callback: function (v) { return Number(v).toLocaleString(); } } }
        }
      }
    });
  }
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();
