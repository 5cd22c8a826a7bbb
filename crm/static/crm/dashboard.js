// Draws the dashboard's revenue chart from the JSON the page embeds with json_script.
(function () {
  "use strict";
  function draw() {
    var canvas = document.getElementById("revenue-chart");
    var source = document.getElementById("revenue-data");
    if (!canvas || !source || typeof window.Chart === "undefined") return;
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
          y: { beginAtZero: true, ticks: { callback: function (v) { return Number(v).toLocaleString(); } } }
        }
      }
    });
  }
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();
