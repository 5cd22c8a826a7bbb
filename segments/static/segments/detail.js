/* Size over time on the segment page, with joined and left per refresh (vendored Chart.js). */
(function () {
  "use strict";
  const canvas = document.getElementById("size-chart");
  const source = document.getElementById("size-chart-data");
  if (!canvas || !source || typeof window.Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new window.Chart(canvas, {
    data: {
      labels: data.labels,
      datasets: [
        { type: "line", label: "Members", data: data.sizes, borderColor: "#4f46e5", backgroundColor: "#4f46e5", yAxisID: "y", tension: 0.2 },
        { type: "bar", label: "Joined", data: data.joined, backgroundColor: "#10b981", yAxisID: "y1" },
        { type: "bar", label: "Left", data: data.left.map((n) => -n), backgroundColor: "#ef4444", yAxisID: "y1" },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: { y: { position: "left", beginAtZero: true }, y1: { position: "right", grid: { drawOnChartArea: false } } },
    },
  });
})();
