/* PatientLine UI glue: JSON forms, error toasts, the notification tray (SSE), keyboard shortcuts. */
(function () {
  "use strict";

  function csrf() { return document.body.dataset.csrf || ""; }

  // Messages in the page's language, rendered by the server into <body data-messages>.
  var MESSAGES = {};
  try { MESSAGES = JSON.parse(document.body.dataset.messages || "{}"); } catch (e) { MESSAGES = {}; }
  function msg(key, fallback) { return MESSAGES[key] || fallback; }

  function toast(message, level) {
    var box = document.getElementById("toasts");
    if (!box) return;
    var el = document.createElement("div");
    el.className = "toast toast-" + (level || "info");
    el.textContent = message;
    box.appendChild(el);
    setTimeout(function () { el.remove(); }, level === "error" ? 8000 : 4000);
  }
  window.plToast = toast;

  function formValue(form) {
    var data = {};
    form.querySelectorAll("[name]").forEach(function (el) {
      if (el.disabled || el.hasAttribute("data-path")) return;
      // data-omit-empty: an empty field is left out, so the server's default applies (new records)
      if (el.value === "" && el.hasAttribute("data-omit-empty")) return;
      var type = el.dataset.type || "";
      var name = el.name;
      if (el.type === "checkbox" && type === "list") {
        data[name] = data[name] || [];
        if (el.checked) data[name].push(el.value);
      } else if (el.type === "checkbox") {
        data[name] = el.checked;
      } else if (type === "lines" || type === "csv-list") {
        // one entry per line; csv-list also splits on commas and the Chinese enumeration comma
        var parts = el.value.split(type === "lines" ? /\n/ : /[\n,，、]/);
        data[name] = parts.map(function (p) { return p.trim(); }).filter(Boolean);
      } else if (type === "int-list") {
        data[name] = Array.from(el.selectedOptions).map(function (o) { return parseInt(o.value, 10); });
      } else if (el.value === "" && el.hasAttribute("data-null")) {
        data[name] = null;
      } else if (type === "int") {
        data[name] = el.value === "" ? null : Number(el.value);
      } else {
        data[name] = el.value;
      }
    });
    form.querySelectorAll("[data-skills]").forEach(function (box) {
      data[box.dataset.skills] = Array.from(box.querySelectorAll("select[data-skill-id]"))
        .filter(function (s) { return s.value !== ""; })
        .map(function (s) { return { skill_id: parseInt(s.dataset.skillId, 10), level: parseInt(s.value, 10) }; });
    });
    return data;
  }

  function showErrors(form, body) {
    var box = form.querySelector(".form-error");
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    if (box) { box.hidden = false; box.textContent = body.message || msg("error", "Error"); }
    var details = Array.isArray(body.details) ? body.details : [];
    details.forEach(function (d) {
      var field = (d.field || "").split(".")[0];
      var holder = form.querySelector('[data-field="' + field + '"]');
      if (!holder) return;
      var p = holder.querySelector(".field-error");
      if (p) { p.hidden = false; p.textContent = d.message; }
      var input = holder.querySelector("[name]");
      if (input) input.setAttribute("aria-invalid", "true");
    });
    if (body.details && !Array.isArray(body.details) && typeof body.details === "object") {
      Object.keys(body.details).forEach(function (field) {
        var holder = form.querySelector('[data-field="' + field + '"]');
        var p = holder && holder.querySelector(".field-error");
        if (p) { p.hidden = false; p.textContent = String(body.details[field]); }
      });
    }
    toast(body.message || msg("error", "Error"), "error");
  }

  // payload: an object sent as JSON, or FormData sent as multipart (a file upload).
  async function send(method, url, payload) {
    var multipart = payload instanceof FormData;
    var headers = { "Accept": "application/json", "X-CSRF-Token": csrf() };
    if (!multipart) headers["Content-Type"] = "application/json";
    var response = await fetch(url, {
      method: method,
      headers: headers,
      body: payload === undefined || multipart ? payload : JSON.stringify(payload),
      credentials: "same-origin",
    });
    var body = null;
    var text = await response.text();
    if (text) { try { body = JSON.parse(text); } catch (e) { body = { message: text }; } }
    if (response.status === 401) { window.location = "/login?ended=1&next=" + encodeURIComponent(location.pathname); }
    return { ok: response.ok, status: response.status, body: body || {} };
  }

  window.plSend = send;

  document.addEventListener("submit", async function (event) {
    var form = event.target;
    if (!form.matches("[data-json-form]")) return;
    event.preventDefault();
    var url = form.dataset.action;
    if (form.dataset.actionTemplate) {
      url = form.dataset.actionTemplate.replace(/\{(\w+)\}/g, function (_, key) {
        var el = form.querySelector('[name="' + key + '"]');
        return encodeURIComponent(el ? el.value : "");
      });
    }
    var button = form.querySelector("[type=submit]");
    if (button) button.disabled = true;
    try {
      var payload = form.hasAttribute("data-multipart") ? new FormData(form) : formValue(form);
      var result = await send(form.dataset.method || "POST", url, payload);
      if (!result.ok) { showErrors(form, result.body); return; }
      var secret = form.hasAttribute("data-show-secret") && result.body[form.dataset.showSecret || "secret"];
      if (secret) {
        var box = form.querySelector(".secret");
        box.hidden = false;
        box.querySelector(".secret-value").textContent = secret;
        return;
      }
      sessionStorage.setItem("pl-flash", form.dataset.flash || "✓");
      var next = form.dataset.successTemplate
        ? form.dataset.successTemplate.replace(/\{(\w+)\}/g, function (_, key) { return encodeURIComponent(result.body[key]); })
        : form.dataset.success;
      window.location = next || window.location.href;
    } finally {
      if (button) button.disabled = false;
    }
  });

  document.addEventListener("click", async function (event) {
    var button = event.target.closest("[data-delete], [data-post]");
    if (!button) return;
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    var result = button.dataset.delete ? await send("DELETE", button.dataset.delete) : await send("POST", button.dataset.post);
    if (!result.ok) { toast(result.body.message || msg("error", "Error"), "error"); return; }
    sessionStorage.setItem("pl-flash", "✓");
    window.location = button.dataset.success || window.location.href;
  });

  // Dialogs: a button with data-open-dialog="id" opens one (its first field focused); data-close-dialog closes it.
  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.dataset.openDialog);
      if (dialog && dialog.showModal && !dialog.open) {
        dialog.showModal();
        var first = dialog.querySelector("select, input:not([type=hidden]), textarea");
        if (first) first.focus();
      }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer && closer.closest("dialog")) closer.closest("dialog").close();
  });

  // htmx requests answer errors with the JSON error shape: show its message.
  document.addEventListener("htmx:responseError", function (event) {
    var message = msg("error", "Error") + " (" + event.detail.xhr.status + ")";
    try { message = JSON.parse(event.detail.xhr.responseText).message || message; } catch (e) { /* not JSON */ }
    toast(message, "error");
  });
  document.addEventListener("htmx:sendError", function () { toast(msg("offline", "The server cannot be reached."), "error"); });

  document.addEventListener("DOMContentLoaded", function () {
    var flash = sessionStorage.getItem("pl-flash");
    if (flash) { sessionStorage.removeItem("pl-flash"); toast(msg("saved", "Saved"), "ok"); }
  });

  // Ctrl+Enter submits the form being edited.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      var form = event.target.closest && event.target.closest("form");
      if (form) { event.preventDefault(); form.requestSubmit(); }
    }
  });

  // Keyboard shortcuts: "/" search, "?" help, "g x" go to, single keys from data-hotkey.
  var pending = "";
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "/") {
      var search = document.querySelector("[data-search]") || document.getElementById("global-q");
      if (search) { event.preventDefault(); search.focus(); }
      return;
    }
    if (event.key === "?") {
      var dialog = document.getElementById("shortcuts");
      if (dialog && dialog.showModal) dialog.showModal();
      return;
    }
    var combo = pending ? pending + " " + event.key : event.key;
    var target = document.querySelector('[data-hotkey="' + combo + '"]');
    if (target) { pending = ""; event.preventDefault(); target.click(); return; }
    pending = event.key === "g" ? "g" : "";
  });

  // Text helpers the page scripts share (window.plText): a message's {names} filled in, clock figures.
  function fill(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (_, key) { return values[key] === undefined ? "" : values[key]; });
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  // Seconds as m:ss, or h:mm:ss from an hour.
  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds || 0));
    var h = Math.floor(s / 3600);
    var text = pad(Math.floor((s % 3600) / 60)) + ":" + pad(s % 60);
    return h ? h + ":" + text : text;
  }
  // The server's clock minus this browser's, from the Date header (second precision: ignored when small).
  function clockOffset(response) {
    var date = Date.parse(response.headers.get("Date") || "");
    if (isNaN(date)) return 0;
    var offset = date - Date.now();
    return Math.abs(offset) > 2000 ? offset : 0;
  }
  window.plText = { fill: fill, pad: pad, duration: duration, clockOffset: clockOffset };

  // The notification tray, fed by the server-sent event stream.
  var LABELS = {
    "directory.changed": function (p) {
      return fill(msg("directory.changed", "{entity} {change}: {name}"), {
        entity: msg("entity." + p.entity, p.entity), change: msg("change." + p.change, p.change), name: p.name });
    },
    "jobs.dead_lettered": function (p) { return fill(msg("jobs.dead_lettered", "Job {kind} #{job_id} failed"), p); },
    "auth.locked_out": function (p) {
      return fill(msg("auth.locked_out", "{username} is locked out until {locked_until}"), {
        username: p.username, locked_until: new Date(p.locked_until).toLocaleString() });
    },
  };

  window.tray = function () {
    return {
      open: false, items: [], unread: 0, connected: false,
      init: function () {
        if (!window.EventSource || !document.body.dataset.csrf) return;
        var self = this;
        var source = new EventSource("/api/events");
        source.onopen = function () { self.connected = true; };
        source.onerror = function () { self.connected = false; };
        source.onmessage = function () { /* typed events only */ };
        Object.keys(LABELS).concat(["notification"]).forEach(function (type) {
          source.addEventListener(type, function (msg) { self.add(type, JSON.parse(msg.data)); });
        });
        window.plEvents = source;
      },
      add: function (type, event) {
        var p = event.payload || {};
        var title = type === "notification" ? msg("notification:" + p.title, p.title) : (LABELS[type] ? LABELS[type](p) : type);
        var time = new Date(event.created_at).toLocaleTimeString();
        this.items.unshift({ id: event.id, title: title, body: p.body || "", link: p.link || null, level: p.level || "info", time: time });
        this.items = this.items.slice(0, 50);
        if (!this.open) this.unread += 1;
        document.dispatchEvent(new CustomEvent("pl:event", { detail: { type: type, event: event } }));
      },
      seen: function () { this.unread = 0; },
    };
  };
})();
