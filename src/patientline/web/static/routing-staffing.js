/* Staffing page: sends the half-hours' contacts and the targets to /api/routing/staffing and shows the
   agents needed per half-hour, the roster per shift and a chart; fills the contacts from history or a
   pasted column; exports the plan as CSV. Once calculated, every change recalculates. */
(function () {
  "use strict";

  var INTERVALS = 48;
  var form, labels, chart = null, calculated = false, timer = null, sequence = 0;

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  var fill = window.plText.fill;
  function percent(value) { return value === null || value === undefined ? "" : (value * 100).toFixed(1) + "%"; }
  function decimal(value, digits) { return value === null || value === undefined ? "" : Number(value).toFixed(digits); }
  function hours(value) { return Number(value).toFixed(1).replace(/\.0$/, ""); }

  function numberOrText(text) {
    var trimmed = String(text).trim();
    if (trimmed === "") return null;
    var value = Number(trimmed);
    return isFinite(value) ? value : trimmed;  // the API names what is wrong with text
  }

  function payload() {
    var body = {};
    $$(".st-params input", form).forEach(function (input) {
      var value = numberOrText(input.value);
      if (value !== null && typeof value === "number" && input.hasAttribute("data-percent")) value = value / 100;
      if (value !== null || input.required) body[input.name] = value;
    });
    body.contacts = $$('input[name="contacts"]', form).map(function (input) {
      var value = numberOrText(input.value);
      return value === null ? 0 : value;
    });
    body.shifts = $$("#st-shifts tr[data-shift]").map(function (row) {
      return { name: $('[name="shift_name"]', row).value.trim(), start: $('[name="shift_start"]', row).value.trim(),
               end: $('[name="shift_end"]', row).value.trim() };
    });
    return body;
  }

  function clearProblems() {
    var box = $("#st-problems");
    box.hidden = true;
    box.textContent = "";
    $$(".field-error", form).forEach(function (p) { p.hidden = true; p.textContent = ""; });
    $$("[aria-invalid]", form).forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function showProblems(body) {
    clearProblems();
    var box = $("#st-problems");
    var list = document.createElement("ul");
    var details = Array.isArray(body.details) ? body.details : [];
    details.forEach(function (detail) {
      var field = detail.field || "";
      var holder = $('[data-field="' + field + '"]', form) || $('[data-field="' + field.split(".")[0] + '"]', form);
      if (holder) {
        var p = holder.classList.contains("field-error") ? holder : $(".field-error", holder);
        if (p) { p.hidden = false; p.textContent = detail.message; }
        var input = $("input, select", holder);
        if (input) input.setAttribute("aria-invalid", "true");
      }
      var item = document.createElement("li");
      item.textContent = (holder && $("label", holder) ? $("label", holder).textContent + ": " : "") + detail.message;
      list.appendChild(item);
    });
    box.textContent = body.message || "";
    if (details.length) box.appendChild(list);
    box.hidden = false;
  }

  function setOut(row, name, text) { var cell = $('[data-out="' + name + '"]', row); if (cell) cell.textContent = text; }

  function showIntervals(plan) {
    var erlangA = plan.model === "erlang_a";
    $$("[data-erlang-a]").forEach(function (el) { el.hidden = !erlangA; });
    $$("#st-intervals tr[data-interval]").forEach(function (row, index) {
      var interval = plan.intervals[index];
      var busy = interval.contacts > 0;
      setOut(row, "raw_agents", interval.raw_agents);
      setOut(row, "scheduled_agents", interval.scheduled_agents);
      setOut(row, "service_level", busy ? percent(erlangA ? interval.service_level_offered : interval.service_level) : "");
      setOut(row, "asa_s", busy ? (interval.asa_s === null ? labels.unreachable : decimal(interval.asa_s, 1)) : "");
      setOut(row, "occupancy", busy ? percent(interval.occupancy) : "");
      setOut(row, "abandon_rate", busy ? percent(interval.abandon_rate) : "");
      var cell = $('[data-out="raw_agents"]', row);
      cell.title = interval.limited_by === "occupancy" ? labels.by.occupancy : "";
    });
  }

  function cell(row, text, numeric) {
    var td = document.createElement("td");
    td.textContent = text;
    if (numeric) td.className = "num";
    row.appendChild(td);
  }

  function tile(label, value, detail) {
    var box = document.createElement("div");
    box.className = "tile";
    var caption = document.createElement("span");
    caption.className = "muted small";
    caption.textContent = label;
    var figure = document.createElement("span");
    figure.className = "tile-number";
    figure.textContent = value;
    box.appendChild(caption);
    box.appendChild(figure);
    if (detail) {
      var more = document.createElement("span");
      more.className = "muted small";
      more.textContent = detail;
      box.appendChild(more);
    }
    return box;
  }

  function showRoster(plan) {
    var totals = plan.totals;
    var holder = $("#st-totals");
    holder.textContent = "";
    holder.appendChild(tile(labels.total_contacts, decimal(totals.contacts, 0)));
    holder.appendChild(tile(labels.peak_raw, totals.peak_raw_agents));
    holder.appendChild(tile(labels.peak_scheduled, totals.peak_scheduled_agents));
    holder.appendChild(tile(labels.roster, totals.roster_agents,
      fill(labels.roster_detail, { hours: hours(totals.roster_agent_hours), interval_hours: hours(totals.interval_agent_hours) })));
    var body = $("#st-roster-table tbody");
    body.textContent = "";
    plan.shifts.forEach(function (shift) {
      var row = document.createElement("tr");
      row.setAttribute("data-shift-result", shift.name);
      var name = document.createElement("th");
      name.scope = "row";
      name.textContent = shift.name;
      row.appendChild(name);
      cell(row, shift.start + "–" + shift.end);
      row.lastChild.className = "nowrap";
      cell(row, decimal(shift.contacts, 0), true);
      cell(row, shift.raw_agents, true);
      cell(row, shift.scheduled_agents, true);
      cell(row, shift.peak_at || labels.none);
      cell(row, hours(shift.agent_hours), true);
      body.appendChild(row);
    });
    var warning = $("#st-uncovered");
    warning.hidden = plan.uncovered.length === 0;
    warning.textContent = plan.uncovered.length ? fill(labels.uncovered, { times: plan.uncovered.join(", ") }) : "";
    $("#st-empty").hidden = true;
    $("#st-roster").hidden = false;
    showChart(plan);
  }

  function showChart(plan) {
    if (!window.echarts) return;
    var el = $("#st-chart");
    if (!chart) chart = window.echarts.init(el, null, { renderer: "svg" });
    var times = plan.intervals.map(function (i) { return i.start; });
    var areas = [];
    plan.shifts.forEach(function (shift, index) {
      // a shift covers the half-hours that start within it; one past midnight is drawn in two parts
      var first = times.indexOf(shift.start);
      var last = (times.indexOf(shift.end === "24:00" ? "00:00" : shift.end) + INTERVALS - 1) % INTERVALS;
      var style = { color: index % 2 ? "rgba(11,92,173,0.04)" : "rgba(11,92,173,0.10)" };
      var parts = first <= last ? [[first, last]] : [[first, INTERVALS - 1], [0, last]];
      parts.forEach(function (part, n) {
        areas.push([{ name: n ? "" : shift.name, xAxis: times[part[0]], itemStyle: style }, { xAxis: times[part[1]] }]);
      });
    });
    chart.setOption({
      aria: { enabled: true },
      animation: false,
      color: ["#0b5cad", "#8a5300", "#4f5d6b"],
      textStyle: { fontFamily: getComputedStyle(document.body).fontFamily },
      tooltip: { trigger: "axis" },
      legend: { data: [labels.agents_scheduled, labels.agents_needed, labels.contacts], top: 0 },
      grid: { left: 40, right: 44, top: 34, bottom: 28 },
      xAxis: { type: "category", data: times, axisLabel: { interval: 3 } },
      yAxis: [{ type: "value", minInterval: 1 }, { type: "value", splitLine: { show: false } }],
      series: [
        { name: labels.agents_scheduled, type: "bar", barCategoryGap: "15%", data: plan.intervals.map(function (i) { return i.scheduled_agents; }),
          markArea: { silent: true, label: { color: "#33414e", position: "insideTop" }, data: areas } },
        { name: labels.agents_needed, type: "bar", barGap: "-100%", data: plan.intervals.map(function (i) { return i.raw_agents; }) },
        { name: labels.contacts, type: "line", yAxisIndex: 1, symbolSize: 4, data: plan.intervals.map(function (i) { return i.contacts; }) },
      ],
    }, true);
  }

  async function calculate() {
    if (!form.reportValidity()) return;
    var mine = ++sequence;
    var status = $("#st-status");
    status.textContent = labels.calculating;
    $("#st-results").setAttribute("aria-busy", "true");
    var result = await window.plSend("POST", "/api/routing/staffing", payload());
    if (mine !== sequence) return;  // a later change already asked again
    $("#st-results").setAttribute("aria-busy", "false");
    if (!result.ok) {
      status.textContent = "";
      showProblems(result.body);
      return;
    }
    clearProblems();
    calculated = true;
    $("#st-export").disabled = false;
    status.textContent = fill(labels.calculated, { model: labels.models[result.body.model] });
    showIntervals(result.body);
    showRoster(result.body);
  }

  function recalculateSoon() {
    if (!calculated) return;
    clearTimeout(timer);
    timer = setTimeout(calculate, 350);
  }

  function setContacts(values) {
    $$('input[name="contacts"]', form).forEach(function (input, index) {
      var value = values[index];
      input.value = value === undefined || value === null || value === 0 ? "" : String(Math.round(value * 10) / 10);
    });
  }

  function numbersIn(text) {
    return String(text).split(/[\s,;]+/).filter(function (part) { return part !== ""; });
  }

  async function fillFromHistory() {
    var params = new URLSearchParams({ weekday: $("#st-weekday").value, weeks: $("#st-weeks").value || "4" });
    if ($("#st-queue").value) params.set("queue_id", $("#st-queue").value);
    var response = await fetch("/api/routing/staffing/history?" + params.toString(),
      { headers: { Accept: "application/json" }, credentials: "same-origin" });
    var body = await response.json();
    if (!response.ok) { showProblems(body); return; }
    setContacts(body.contacts);
    var weekday = $("#st-weekday").selectedOptions[0].textContent;
    window.plToast(fill(labels.filled, { weeks: body.weeks, weekday: weekday }), "ok");
    calculate();
  }

  function usePasted(text, from) {
    var parts = numbersIn(text);
    var inputs = $$('input[name="contacts"]', form);
    if (from === undefined && parts.length !== INTERVALS) {
      window.plToast(fill(labels.paste_count, { count: parts.length }), "error");
      return false;
    }
    parts.slice(0, inputs.length - (from || 0)).forEach(function (part, index) { inputs[(from || 0) + index].value = part; });
    window.plToast(fill(labels.pasted, { count: Math.min(parts.length, inputs.length - (from || 0)) }), "ok");
    if (calculated) calculate();
    return true;
  }

  function renumberShifts() {
    $$("#st-shifts tr[data-shift]").forEach(function (row, index) {
      var cells = $$("td", row);
      ["name", "start", "end"].forEach(function (part, column) { cells[column].setAttribute("data-field", "shifts." + index + "." + part); });
    });
  }

  async function exportCsv() {
    if (!form.reportValidity()) return;
    var response = await fetch("/api/routing/staffing/export.csv", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": document.body.dataset.csrf || "" },
      body: JSON.stringify(payload()),
    });
    if (!response.ok) { showProblems(await response.json()); return; }
    var link = document.createElement("a");
    link.href = URL.createObjectURL(await response.blob());
    link.download = "staffing.csv";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    form = $("#st-form");
    if (!form) return;
    labels = JSON.parse($("#st-labels").textContent);
    form.addEventListener("submit", function (event) { event.preventDefault(); calculate(); });
    form.addEventListener("input", function (event) { if (event.target.closest(".st-tools") === null) recalculateSoon(); });
    form.addEventListener("paste", function (event) {
      var input = event.target;
      if (input.name !== "contacts") return;
      var text = (event.clipboardData || window.clipboardData).getData("text");
      if (numbersIn(text).length < 2) return;  // one value: an ordinary paste
      event.preventDefault();
      usePasted(text, $$('input[name="contacts"]', form).indexOf(input));  // a column from a spreadsheet
    });
    $("#st-fill").addEventListener("click", fillFromHistory);
    $("#st-use-paste").addEventListener("click", function () { if (usePasted($("#st-paste").value)) $("#st-paste").value = ""; });
    $("#st-clear").addEventListener("click", function () { setContacts([]); recalculateSoon(); });
    $("#st-export").addEventListener("click", exportCsv);
    $("#st-add-shift").addEventListener("click", function () {
      var row = $("#st-shift-row").content.firstElementChild.cloneNode(true);
      $("#st-shifts").appendChild(row);
      renumberShifts();
      $("input", row).focus();
    });
    $("#st-shifts").addEventListener("click", function (event) {
      var button = event.target.closest("[data-remove-shift]");
      if (!button || $$("#st-shifts tr[data-shift]").length < 2) return;
      button.closest("tr").remove();
      renumberShifts();
      recalculateSoon();
    });
    window.addEventListener("resize", function () { if (chart) chart.resize(); });
  });
})();
