// Draws the campaign report charts from the JSON the page embeds with json_script.
(function () {
  "use strict";
  function bar(id, labels, values, label) {
    var canvas = document.getElementById(id);
    if (!canvas || typeof window.Chart === "undefined") return;
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: [{ label: label, data: values, backgroundColor: "#6366f1", borderRadius: 4 }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false, scales: { y: { beginAtZero: true } } }
    });
  }
  function draw() {
    var source = document.getElementById("campaign-chart-data");
    if (!source) return;
    var data = JSON.parse(source.textContent);
    bar("conversion-chart", data.labels, data.conversion, "Conversion %");
    bar("revenue-chart", data.labels, data.revenue_per_recipient, "Revenue per recipient");
    if (data.funnel) bar("funnel-chart", data.funnel_labels, data.funnel, "Recipients");
  }
  if (document.readyState !== "loading") draw();
  else document.addEventListener("DOMContentLoaded", draw);
})();
