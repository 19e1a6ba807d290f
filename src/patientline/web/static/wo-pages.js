/* Work-order pages: deadline countdowns, registration (type hotkeys 1-9, the type's own fields, one
   client_key per form so a double submit makes one order), the forms on an order's page (JSON to
   /api/workorders with the order's version; a stale version asks for a reload), evidence uploads and
   the live department queue (re-fetched when a `workorders.changed` event arrives). */
(function () {
  "use strict";

  var TEXT = {};
  var root = document.getElementById("wo-texts");
  try { TEXT = JSON.parse(document.body.dataset.messages || "{}"); } catch (e) { TEXT = {}; }  // app.js's: error, offline
  try { Object.assign(TEXT, JSON.parse((root && root.dataset.texts) || "{}")); } catch (e) { /* English fallbacks */ }
  function t(key, fallback) { return TEXT[key] || fallback; }
  var fill = window.plText.fill, pad = window.plText.pad;
  function toast(message, level) { if (window.plToast) window.plToast(message, level); }

  // --- countdowns -----------------------------------------------------------------------------------

  function span(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    if (minutes < 60) return fill(t("minutes", "{n} min"), { n: minutes });
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return fill(t("hours", "{n} h"), { n: hours });
    return fill(t("days", "{n} d"), { n: Math.floor(hours / 24) });
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      var left = due - now;
      el.textContent = left >= 0
        ? fill(t("due_in", "due in {time}"), { time: span(left) })
        : fill(t("overdue_by", "overdue {time}"), { time: span(left) });
      el.classList.toggle("is-overdue", left < 0);
    });
  }
  tick();
  setInterval(tick, 30000);
  document.addEventListener("htmx:afterSwap", tick);

  // --- values ---------------------------------------------------------------------------------------


  /* A datetime-local value ("2026-11-22T09:30") as ISO 8601 with the browser's offset at that moment. */
  function isoLocal(value) {
    if (!value) return null;
    var moment = new Date(value);
    if (isNaN(moment.getTime())) return value;  // the API explains what is wrong
    var offset = -moment.getTimezoneOffset();
    var sign = offset >= 0 ? "+" : "-";
    offset = Math.abs(offset);
    return (value.length === 16 ? value + ":00" : value) + sign + pad(Math.floor(offset / 60)) + ":" + pad(offset % 60);
  }

  function fieldValue(el) {
    var type = el.dataset.type || "";
    if (type === "int-list") return Array.from(el.selectedOptions).map(function (o) { return parseInt(o.value, 10); });
    if (type === "int") return el.value === "" ? null : Number(el.value);
    if (type === "bool") return el.value === "true";
    if (type === "datetime") return isoLocal(el.value);
    return el.value;
  }

  function collect(container, submitter) {
    var data = {};
    container.querySelectorAll("[name]").forEach(function (el) {
      if (el.disabled || el.type === "submit" || el.type === "file") return;
      if ((el.type === "radio" || el.type === "checkbox") && !el.checked) return;
      if (el.value === "" && (el.hasAttribute("data-omit-empty") || el.type === "radio")) return;
      data[el.name] = fieldValue(el);
    });
    if (submitter && submitter.name) data[submitter.name] = submitter.value;
    return data;
  }

  // --- errors ---------------------------------------------------------------------------------------

  /* Where a field's error goes: its holder ("values.visit_date", "subject"), else its first part's,
     never one inside a hidden block (each type's block has its own "category"). */
  function holderFor(form, field) {
    var names = field ? [field, field.split(".")[0]] : [];
    for (var i = 0; i < names.length; i++) {
      var shown = Array.from(form.querySelectorAll('[data-field="' + CSS.escape(names[i]) + '"]'))
        .filter(function (holder) { return !holder.closest("[hidden]"); });
      if (shown.length) return shown[0];
    }
    return null;
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var box = form.querySelector(".form-error");
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  function showStale(message) {
    var banner = document.getElementById("wo-stale");
    var text = t("stale", message);
    if (banner) {
      banner.querySelector("[data-stale-text]").textContent = text;
      banner.hidden = false;
      banner.scrollIntoView({ block: "nearest" });
    }
    toast(text, "error");
  }

  function showErrors(form, result) {
    var body = result.body || {};
    if (result.status === 409 && body.error_id === "stale_version") { showStale(body.message); return; }
    var message = body.message || t("error", "Error");
    var box = form.querySelector(".form-error");
    if (box) { box.hidden = false; box.textContent = message; }
    var first = null;
    (Array.isArray(body.details) ? body.details : []).forEach(function (d) {
      var holder = holderFor(form, d.field || "");
      if (!holder) return;
      var p = holder.querySelector(".field-error");
      if (p) { p.hidden = false; p.textContent = d.message || message; }
      var input = holder.querySelector("input, select, textarea");
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    });
    if (first) first.focus();
    toast(message, "error");
  }

  function done(url) {
    sessionStorage.setItem("pl-flash", "✓");
    if (url) window.location = url; else window.location.reload();
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-reload]")) window.location.reload();
  });

  // --- the forms on an order's page and in the lists ------------------------------------------------

  async function lookUpReference(form, data) {
    var input = form.querySelector("[data-lookup-reference]");
    if (!input) return true;
    var key = input.dataset.lookupReference;
    var reference = (data[input.name] || "").trim().toUpperCase();
    delete data[input.name];
    var found = reference ? await window.plSend("GET", "/api/workorders/by-reference/" + encodeURIComponent(reference)) : { ok: false };
    if (!found.ok) {
      var text = t("no_reference", "No work order has this reference.");
      showErrors(form, { status: 404, body: { message: text, details: [{ field: key, message: text }] } });
      return false;
    }
    data[key] = found.body.id;
    return true;
  }

  async function submitJson(form, submitter) {
    if (submitter && submitter.dataset.confirm && !window.confirm(submitter.dataset.confirm)) return;
    clearErrors(form);
    var data = collect(form, submitter);
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      if (!(await lookUpReference(form, data))) return;
      var result = await window.plSend("POST", form.dataset.action, data);
      if (!result.ok) { showErrors(form, result); return; }
      done(form.dataset.success);
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  async function upload(form) {
    clearErrors(form);
    var input = form.querySelector("input[type=file]");
    var file = input && input.files[0];
    var limit = parseInt(form.dataset.maxBytes, 10);
    if (!file) {
      showErrors(form, { status: 422, body: { message: t("choose_file", "Choose a file first."), details: [{ field: "file" }] } });
      return;
    }
    if (file.size > limit) {
      var text = fill(t("too_large", "A file may be at most {mb} MB."), { mb: Math.round(limit / 1048576) });
      showErrors(form, { status: 413, body: { message: text, details: [{ field: "file", message: text }] } });
      return;
    }
    var body = new FormData();
    body.append("file", file);
    body.append("note", (form.querySelector("[name=note]") || { value: "" }).value);
    var button = form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    try {
      var response = await fetch(form.dataset.action, {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": document.body.dataset.csrf || "" },
      });
      var parsed = {};
      try { parsed = await response.json(); } catch (e) { parsed = { message: response.statusText }; }
      if (!response.ok) { showErrors(form, { status: response.status, body: parsed }); return; }
      done();
    } catch (e) {
      toast(t("offline", "The server cannot be reached."), "error");
    } finally {
      if (button) button.disabled = false;
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("[data-wo-form]")) { event.preventDefault(); submitJson(form, event.submitter); }
    else if (form.matches("[data-wo-upload]")) { event.preventDefault(); upload(form); }
    else if (form.matches("[data-wo-new]")) { event.preventDefault(); register(form); }
  });

  // --- registration ---------------------------------------------------------------------------------

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);  // also outside secure contexts (plain http on the hospital network)
    return Array.from(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  var newForm = document.querySelector("[data-wo-new]");
  var clientKey = uuid();

  function chosenType() { return newForm.querySelector("input[name=type_id]:checked"); }

  function activeBlock() {
    var radio = chosenType();
    return radio ? newForm.querySelector('[data-type-block="' + radio.value + '"]') : null;
  }

  function showType(radio) {
    newForm.querySelectorAll("[data-type-block]").forEach(function (block) {
      block.hidden = block.dataset.typeBlock !== radio.value;
    });
    var department = newForm.querySelector("select[name=department_id]");
    if (department && !department.dataset.touched) department.value = radio.dataset.defaultDepartment || "";
  }

  function typeValues(block) {
    var values = {};
    if (!block) return values;
    block.querySelectorAll("[data-value]").forEach(function (el) {
      if (el.value === "") return;
      var kind = el.dataset.kind || "";
      var number = Number(el.value);
      if (kind === "number") values[el.dataset.value] = isNaN(number) ? el.value : number;
      else if (kind === "yes_no") values[el.dataset.value] = el.value === "true";
      else values[el.dataset.value] = el.value;
    });
    return values;
  }

  /* Every required field left empty, reported at once before the API is asked (it checks again). */
  function missing(form) {
    var holders = [];
    form.querySelectorAll("[required]").forEach(function (el) {
      if (el.closest("[hidden]") || el.type === "radio" || el.value.trim() !== "") return;
      var holder = el.closest("[data-field]");
      if (holder && holders.indexOf(holder) < 0) holders.push(holder);
    });
    return holders.map(function (holder) { return { field: holder.dataset.field, message: t("required", "This field is required.") }; });
  }

  async function register(form) {
    clearErrors(form);
    var empty = missing(form);
    if (empty.length) {
      showErrors(form, { status: 422, body: { message: t("required", "This field is required."), details: empty } });
      return;
    }
    var radio = chosenType();
    var data = {};
    form.querySelectorAll("[name]").forEach(function (el) {
      if (el.closest("[data-type-block]") || el.name === "type_id") return;
      if (el.value === "" && el.hasAttribute("data-omit-empty")) return;
      data[el.name] = fieldValue(el);
    });
    var block = activeBlock();
    var category = block && block.querySelector("[name=category]");
    data.category = category ? category.value : "";
    data.values = typeValues(block);
    data.type_id = radio ? Number(radio.value) : null;
    data.client_key = clientKey;
    var button = form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    try {
      var result = await window.plSend("POST", "/api/workorders", data);
      if (!result.ok) { showErrors(form, result); return; }
      done("/workorders/" + result.body.id);
    } finally {
      if (button) button.disabled = false;
    }
  }

  if (newForm) {
    newForm.addEventListener("change", function (event) {
      if (event.target.name === "type_id") showType(event.target);
      if (event.target.name === "department_id") event.target.dataset.touched = "1";
    });
    // 1-9 choose the type, from anywhere but a text field
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey || event.metaKey || event.altKey || !/^[1-9]$/.test(event.key)) return;
      var target = event.target;
      var tag = (target.tagName || "").toLowerCase();
      if ((tag === "input" && target.type !== "radio" && target.type !== "checkbox") || tag === "textarea" || tag === "select") return;
      var radios = newForm.querySelectorAll("input[name=type_id]");
      var radio = radios[parseInt(event.key, 10) - 1];
      if (!radio) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      radio.checked = true;
      radio.focus();
      showType(radio);
    }, true);
    var start = chosenType() || newForm.querySelector("input[name=type_id]");
    if (start) { start.focus(); }
  }

  // --- live lists -----------------------------------------------------------------------------------

  var live = document.querySelector("[data-live]");
  if (live && window.htmx) {
    var timer = null;
    var refresh = function () {  // at most once a second, however busy the centre is
      if (timer) return;
      timer = setTimeout(function () {
        timer = null;
        window.htmx.ajax("GET", live.dataset.live, { target: "#" + live.id, swap: "innerHTML" });
      }, 1000);
    };
    var attach = function (tries) {
      var source = window.plEvents;
      if (!source) { if (tries < 100) setTimeout(function () { attach(tries + 1); }, 200); return; }
      source.addEventListener("workorders.changed", refresh);
    };
    attach(0);
    document.addEventListener("pl:event", function (event) {
      var payload = (event.detail.event || {}).payload || {};
      if (event.detail.type === "notification" && String(payload.link || "").indexOf("/workorders/") === 0) refresh();
    });
  }
})();

// The full number for calling back: asked for with a reason, which the server writes to the audit log.
document.addEventListener("click", async function (event) {
  var button = event.target.closest("[data-reveal-phone]");
  if (!button) return;
  var id = button.dataset.revealPhone;
  var reason = window.prompt(button.dataset.reason, "回电");
  if (!reason) return;
  var result = await window.plSend("POST", "/api/workorders/" + id + "/phone", { reason: reason });
  if (!result.ok) { window.plToast(result.body.message, "error"); return; }
  document.querySelectorAll('[data-phone-of="' + id + '"]').forEach(function (el) { el.textContent = result.body.display; });
  button.remove();
});
