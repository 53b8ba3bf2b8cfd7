// The training run page's charts: one line chart per metric (Chart.js, served from
// static/vendor), with axes, the value under the pointer, and scientific notation for very
// small or very large numbers. The page polls its progress every second; the chart boxes are
// kept (hx-preserve) and each poll only hands them the new data.
(function () {
  "use strict";

  // Four significant digits; scientific notation below 1e-3 or from 1e6 (as the server does).
  function formatNumber(value) {
    if (typeof value !== "number" || !isFinite(value)) return String(value);
    if (Number.isInteger(value) && Math.abs(value) < 1e6) return String(value);
    var size = Math.abs(value);
    if (value !== 0 && (size < 1e-3 || size >= 1e6)) {
      var parts = value.toExponential(3).split("e");
      var mantissa = parts[0].replace(/\.?0+$/, "");
      var exponent = Number(parts[1]);
      return mantissa + "e" + (exponent < 0 ? "-" : "+") + String(Math.abs(exponent)).padStart(2, "0");
    }
    return size < 1e4 ? String(Number(value.toPrecision(4))) : value.toFixed(1);
  }
  window.formatNumber = formatNumber;

  var charts = {};

  function readData() {
    var source = document.getElementById("run-charts-data");
    if (!source) return [];
    try {
      return JSON.parse(source.textContent);
    } catch (error) {
      return [];
    }
  }

  function summary(series) {
    return "first " + formatNumber(series.first) + " · last " + formatNumber(series.last) +
      " · range " + formatNumber(series.min) + " to " + formatNumber(series.max);
  }

  function points(series) {
    return series.steps.map(function (step, i) { return { x: step, y: series.values[i] }; });
  }

  function options(series) {
    var axisTitle = function (text) { return { display: true, text: text, color: "#374151" }; };
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      interaction: { mode: "nearest", axis: "x", intersect: false },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            title: function (items) { return items.length ? "step " + items[0].parsed.x : ""; },
            label: function (item) { return series.name + ": " + formatNumber(item.parsed.y); },
          },
        },
      },
      scales: {
        x: { type: "linear", title: axisTitle("step"), ticks: { precision: 0, color: "#374151" } },
        y: {
          title: axisTitle(series.name),
          ticks: { color: "#374151", callback: function (value) { return formatNumber(value); } },
        },
      },
    };
  }

  function create(container, series) {
    var card = document.createElement("section");
    card.className = "card chart";
    var heading = document.createElement("h3");
    heading.textContent = series.name;
    var box = document.createElement("div");
    box.className = "chart-box";
    var canvas = document.createElement("canvas");
    canvas.setAttribute("role", "img");
    var note = document.createElement("p");
    note.className = "muted chart-summary";
    box.appendChild(canvas);
    card.append(heading, box, note);
    container.appendChild(card);
    var chart = new window.Chart(canvas, {
      type: "line",
      data: {
        datasets: [{
          label: series.name, data: points(series), borderColor: "#3b5bdb",
          backgroundColor: "#3b5bdb", borderWidth: 2, pointRadius: 0, pointHoverRadius: 4,
        }],
      },
      options: options(series),
    });
    return { chart: chart, canvas: canvas, note: note };
  }

  function draw() {
    var container = document.getElementById("run-charts");
    if (!container || !window.Chart) return;
    readData().forEach(function (series) {
      var entry = charts[series.name];
      if (!entry || !container.contains(entry.canvas)) {
        entry = charts[series.name] = create(container, series);
      } else {
        entry.chart.data.datasets[0].data = points(series);
        entry.chart.options = options(series);
        entry.chart.update("none");
      }
      entry.canvas.setAttribute("aria-label", series.name + " by step: " + summary(series));
      entry.note.textContent = summary(series);
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", draw);
})();
