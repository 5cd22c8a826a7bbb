// Charts of the ML segment and churn model pages; data comes from json_script blocks (CSP).
(function () {
  "use strict";
  var COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
    "#65a30d", "#ea580c", "#4f46e5", "#0d9488", "#9333ea"];
  function colour(i) { return COLOURS[i % COLOURS.length]; }
  function read(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  function ready(fn) {
    if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn);
  }
  ready(function () {
    if (typeof Chart === "undefined") return;
    var data = read("ml-chart-data");
    if (data) {
      var sizes = document.getElementById("ml-sizes");
      if (sizes) {
        new Chart(sizes, {
          type: "bar",
          data: {
            labels: data.clusters.map(function (c) { return c.name; }),
            datasets: [{ label: "Customers", data: data.clusters.map(function (c) { return c.size; }),
              backgroundColor: data.clusters.map(function (c) { return colour(c.label); }) }]
          },
          options: { plugins: { legend: { display: false } }, maintainAspectRatio: false }
        });
      }
      var scatter = document.getElementById("ml-scatter");
      if (scatter) {
        new Chart(scatter, {
          type: "scatter",
          data: {
            datasets: data.clusters.map(function (c) {
              return {
                label: c.name, backgroundColor: colour(c.label), pointRadius: 2,
                data: data.points.filter(function (p) { return p[2] === c.label; })
                  .map(function (p) { return { x: p[0], y: p[1] }; })
              };
            })
          },
          options: { maintainAspectRatio: false, animation: false }
        });
      }
      var profiles = document.getElementById("ml-profiles");
      if (profiles) {
        data.clusters.forEach(function (c) {
          var box = document.createElement("div");
          box.className = "profile-chart";
          var title = document.createElement("h3");
          title.textContent = c.name;
          var holder = document.createElement("div");
          holder.className = "chart-box";
          var canvas = document.createElement("canvas");
          canvas.setAttribute("role", "img");
          canvas.setAttribute("aria-label", "Profile of " + c.name);
          holder.appendChild(canvas);
          box.appendChild(title);
          box.appendChild(holder);
          profiles.appendChild(box);
          new Chart(canvas, {
            type: "bar",
            data: { labels: data.features, datasets: [{ label: "sd from overall mean", data: c.z,
              backgroundColor: c.z.map(function (v) { return v >= 0 ? colour(c.label) : "#9ca3af"; }) }] },
            options: { indexAxis: "y", maintainAspectRatio: false, plugins: { legend: { display: false } },
              scales: { x: { suggestedMin: -2, suggestedMax: 2 } } }
          });
        });
      }
    }
    var predictive = read("ml-predictive-data");
    var calibration = document.getElementById("calibration");
    if (predictive && calibration) {
      var bins = predictive.calibration;
      new Chart(calibration, {
        type: "scatter",
        data: {
          datasets: [
            { label: "Held-out customers", backgroundColor: colour(0), pointRadius: 5,
              data: bins.map(function (b) { return { x: b.predicted, y: b.observed }; }) },
            { label: "Perfect calibration", type: "line", borderColor: "#9ca3af", pointRadius: 0,
              data: [{ x: 0, y: 0 }, { x: 1, y: 1 }] }
          ]
        },
        options: { maintainAspectRatio: false, scales: {
          x: { min: 0, max: 1, title: { display: true, text: "Predicted churn risk" } },
          y: { min: 0, max: 1, title: { display: true, text: "Observed churn" } } } }
      });
    }
  });
})();
