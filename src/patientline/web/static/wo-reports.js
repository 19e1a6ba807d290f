/* Work-order report charts (ECharts, SVG): received and resolved per day, orders and on-time rates by
   department, orders by type. The figures come from the page itself (#wo-report-data). */
(function () {
  "use strict";

  var PALETTE = ["#0b5cad", "#1d6b35", "#b3261e", "#8a5300", "#5b2a86", "#0e7c86", "#4f5d6b", "#9c4221"];

  function percent(value) { return value === null || value === undefined ? null : Math.round(value * 1000) / 10; }

  document.addEventListener("DOMContentLoaded", function () {
    var holder = document.getElementById("wo-report-data");
    if (!holder || !window.echarts) return;
    var data = JSON.parse(holder.textContent);
    var report = data.report;
    var L = data.labels;
    var charts = [];

    function make(name, option) {
      var el = document.querySelector('[data-chart="' + name + '"]');
      if (!el) return;
      el.textContent = "";
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(Object.assign({
        aria: { enabled: true },
        color: PALETTE,
        textStyle: { color: "#33414e", fontFamily: getComputedStyle(document.body).fontFamily },
        animation: false,
      }, option));
      charts.push(chart);
    }

    make("daily", {
      tooltip: { trigger: "axis" },
      legend: { data: [L.received, L.resolved], top: 0 },
      grid: { left: 44, right: 16, top: 34, bottom: 28 },
      xAxis: { type: "category", data: report.daily.map(function (d) { return d.day.slice(5); }) },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        { name: L.received, type: "line", symbolSize: 5, data: report.daily.map(function (d) { return d.received; }) },
        { name: L.resolved, type: "line", symbolSize: 5, data: report.daily.map(function (d) { return d.resolved; }) },
      ],
    });

    var departments = report.by_department.slice(0, 15);
    make("departments", {
      tooltip: { trigger: "axis" },
      legend: { data: [L.orders, L.reply_rate, L.resolve_rate], top: 0 },
      grid: { left: 44, right: 44, top: 40, bottom: departments.length > 4 ? 70 : 30 },
      xAxis: { type: "category", data: departments.map(function (g) { return g.label; }),
               axisLabel: { interval: 0, rotate: departments.length > 4 ? 30 : 0 } },
      yAxis: [{ type: "value", minInterval: 1 }, { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } }],
      series: [
        { name: L.orders, type: "bar", barMaxWidth: 36, data: departments.map(function (g) { return g.count; }) },
        { name: L.reply_rate, type: "line", yAxisIndex: 1, data: departments.map(function (g) { return percent(g.reply_rate); }) },
        { name: L.resolve_rate, type: "line", yAxisIndex: 1, data: departments.map(function (g) { return percent(g.resolve_rate); }) },
      ],
    });

    make("types", {
      tooltip: { trigger: "item", formatter: "{b}: {c} ({d}%)" },
      legend: { type: "scroll", bottom: 0 },
      series: [{
        type: "pie", radius: ["35%", "62%"], center: ["50%", "45%"],
        label: { formatter: "{b}\n{c}" },
        data: report.by_type.map(function (g) { return { name: g.label, value: g.count }; }),
      }],
    });

    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  });
})();
