// Draws a journey's counts per step from the JSON the page embeds with json_script.
(function () {
  "use strict";
  function draw() {
    var source = document.getElementById("journey-chart-data");
    var canvas = document.getElementById("journey-chart");
    if (!source || !canvas || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Reached", data: data.reached, backgroundColor: "#6366f1", borderRadius: 4 },
          { label: "On it now", data: data.waiting, backgroundColor: "#f59e0b", borderRadius: 4 },
          { label: "Reached the goal", data: data.converted, backgroundColor: "#10b981", borderRadius: 4 }
        ]
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false, indexAxis: "y",
                 scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }
    });
  }
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();
