/* Queue report charts (ECharts, SVG): per queue, contacts offered, answered and abandoned per interval
   as bars and the service level as a line against the queue's target. The figures come from the page
   itself (#rr-data). */
(function () {
  "use strict";

  function percent(value) { return value === null || value === undefined ? null : Math.round(value * 1000) / 10; }

  document.addEventListener("DOMContentLoaded", function () {
    var holder = document.getElementById("rr-data");
    if (!holder || !window.echarts) return;
    var data = JSON.parse(holder.textContent);
    var L = data.labels;
    var charts = [];
    data.report.queues.forEach(function (queue) {
      var el = document.querySelector('[data-chart="' + queue.id + '"]');
      if (!el || !queue.intervals.length) return;
      el.textContent = "";
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      var target = queue.sl_target ? percent(queue.sl_target) : null;
      chart.setOption({
        aria: { enabled: true },
        animation: false,
        color: ["#4f5d6b", "#0b5cad", "#b3261e", "#1d6b35"],
        textStyle: { color: "#33414e", fontFamily: getComputedStyle(document.body).fontFamily },
        tooltip: { trigger: "axis" },
        legend: { data: [L.offered, L.answered, L.abandoned, L.service_level], top: 0 },
        grid: { left: 44, right: 52, top: 34, bottom: 28 },
        xAxis: { type: "category", data: queue.intervals.map(function (i) { return i.label; }) },
        yAxis: [{ type: "value", minInterval: 1 },
                { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" }, splitLine: { show: false } }],
        series: [
          { name: L.offered, type: "bar", barMaxWidth: 28, data: queue.intervals.map(function (i) { return i.offered; }) },
          { name: L.answered, type: "bar", barMaxWidth: 28, data: queue.intervals.map(function (i) { return i.answered; }) },
          { name: L.abandoned, type: "bar", barMaxWidth: 28, data: queue.intervals.map(function (i) { return i.abandoned; }) },
          { name: L.service_level, type: "line", yAxisIndex: 1, connectNulls: true, symbolSize: 5,
            data: queue.intervals.map(function (i) { return percent(i.service_level); }),
            markLine: target === null ? undefined : { silent: true, symbol: "none", label: { position: "insideEndTop", formatter: L.target + " {c}%" },
                                                      data: [{ yAxis: target }] } },
        ],
      });
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
  });
})();
