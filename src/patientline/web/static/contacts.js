/* Contact pages: JSON forms to /api/contacts, /api/dispositions and /api/handovers (the API checks
   everything; a stale version shows a reload banner), the contact's save and close (Alt+S, Alt+L),
   the disposition picker's filter, the reveal of a number with a reason, the tree editor's buttons
   and the handover's acknowledge and item ticks. */
(function () {
  "use strict";

  var TEXT = {};
  var root = document.getElementById("ct-texts");
  try { TEXT = JSON.parse(document.body.dataset.messages || "{}"); } catch (e) { TEXT = {}; }
  try { Object.assign(TEXT, JSON.parse((root && root.dataset.texts) || "{}")); } catch (e) { /* English fallbacks */ }
  function t(key, fallback) { return TEXT[key] || fallback; }
  function toast(message, level) { if (window.plToast) window.plToast(message, level); }
  function send(method, url, body) { return window.plSend(method, url, body); }

  function showStale(message) {
    var banner = document.getElementById("ct-stale");
    var text = t("stale", message);
    if (banner) {
      banner.querySelector("[data-stale-text]").textContent = text;
      banner.hidden = false;
      banner.scrollIntoView({ block: "nearest" });
    }
    toast(text, "error");
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    var box = form.querySelector(".form-error");
    if (box) { box.hidden = true; box.textContent = ""; }
  }

  function showErrors(form, result) {
    var body = result.body || {};
    if (result.status === 409 && body.error_id === "stale_version") { showStale(body.message); return; }
    var message = body.message || t("error", "Error");
    var box = form.querySelector(".form-error");
    if (box) { box.hidden = false; box.textContent = message; }
    var first = null;
    (Array.isArray(body.details) ? body.details : []).forEach(function (d) {
      var field = String(d.field || "").split(".")[0];
      var holder = field && form.querySelector('[data-field="' + CSS.escape(field) + '"]');
      if (!holder) return;
      var p = holder.querySelector(".field-error");
      if (p) { p.hidden = false; p.textContent = d.message || message; }
      var input = holder.querySelector("input, select, textarea");
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    });
    if (first) first.focus();
    toast(message, "error");
  }

  function collect(form) {
    var data = {};
    form.querySelectorAll("[name]").forEach(function (el) {
      if (el.disabled || el.type === "submit" || el.name === "intent") return;
      var type = el.dataset.type || "";
      if (type === "int-check") {
        data[el.name] = data[el.name] || [];
        if (el.checked) data[el.name].push(parseInt(el.value, 10));
        return;
      }
      if (el.value === "" && el.hasAttribute("data-omit-empty")) return;
      if (el.value === "" && el.hasAttribute("data-null")) { data[el.name] = null; return; }
      if (type === "int") { data[el.name] = Number(el.value); return; }
      if (type === "lines") {
        data[el.name] = el.value.split(/\n/).map(function (s) { return s.trim(); }).filter(Boolean);
        return;
      }
      data[el.name] = el.value;
    });
    return data;
  }

  function done(url) {
    sessionStorage.setItem("pl-flash", "✓");
    if (url) window.location = url; else window.location.reload();
  }

  async function submit(form, submitter) {
    if (submitter && submitter.dataset.confirm && !window.confirm(submitter.dataset.confirm)) return;
    clearErrors(form);
    var data = collect(form);
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    try {
      if (form.hasAttribute("data-ct-contact")) {
        data.version = parseInt(form.dataset.version, 10);
        var saved = await send("PATCH", form.dataset.action, data);
        if (!saved.ok) { showErrors(form, saved); return; }
        if (submitter && submitter.value === "close") {
          var closed = await send("POST", form.dataset.close, { version: saved.body.version });
          if (!closed.ok) { form.dataset.version = saved.body.version; showErrors(form, closed); return; }
        }
        done();
        return;
      }
      var result = await send(form.dataset.method || "POST", form.dataset.action, data);
      if (!result.ok) { showErrors(form, result); return; }
      var next = form.dataset.successTemplate
        ? form.dataset.successTemplate.replace(/\{(\w+)\}/g, function (_, key) { return encodeURIComponent(result.body[key]); })
        : form.dataset.success;
      done(next);
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
    }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches("[data-ct-form]")) return;
    event.preventDefault();
    submit(form, event.submitter);
  });

  // Alt+S saves the contact, Alt+L saves and closes it (Alt+C is the agent bar's complete).
  document.addEventListener("keydown", function (event) {
    if (!event.altKey || event.ctrlKey || event.metaKey) return;
    var form = document.querySelector("[data-ct-contact]");
    if (!form) return;
    var key = (event.key || "").toLowerCase();
    var intent = key === "s" ? "save" : key === "l" ? "close" : null;
    var button = intent && form.querySelector('button[name="intent"][value="' + intent + '"]');
    if (!button) return;
    event.preventDefault();
    form.requestSubmit(button);
  });

  document.addEventListener("click", async function (event) {
    var el = event.target.closest("[data-reload], [data-reveal], [data-ct-call], [data-code-rename], [data-code-move]");
    if (!el) return;
    if (el.hasAttribute("data-reload")) { window.location.reload(); return; }
    if (el.dataset.reveal) {
      var reason = window.prompt(t("reveal_reason", "Why do you need the full number?"));
      if (!reason) return;
      var shown = await send("POST", el.dataset.reveal, { reason: reason });
      if (!shown.ok) { toast(shown.body.message || t("error", "Error"), "error"); return; }
      var holder = document.querySelector("[data-phone]");
      if (holder) holder.textContent = shown.body.phone;
      el.remove();
      return;
    }
    if (el.dataset.ctCall) {
      if (el.dataset.confirm && !window.confirm(el.dataset.confirm)) return;
      var body = el.dataset.body ? JSON.parse(el.dataset.body) : undefined;
      await call(el.dataset.ctCall, el.dataset.url, body);
      return;
    }
    if (el.dataset.codeRename) {
      var name = window.prompt(t("new_name", "New name"), el.dataset.name);
      if (!name || name === el.dataset.name) return;
      await call("PATCH", "/api/dispositions/" + el.dataset.codeRename, { version: parseInt(el.dataset.version, 10), name: name });
      return;
    }
    if (el.dataset.codeMove) {
      var ids = JSON.parse(el.dataset.siblings);
      var id = parseInt(el.dataset.codeMove, 10);
      var at = ids.indexOf(id);
      var to = at + parseInt(el.dataset.delta, 10);
      ids.splice(at, 1);
      ids.splice(to, 0, id);
      var parent = el.dataset.parent ? parseInt(el.dataset.parent, 10) : null;
      await call("POST", "/api/dispositions/reorder", { parent_id: parent, ids: ids });
    }
  });

  async function call(method, url, body) {
    var result = await send(method, url, body);
    if (!result.ok) {
      if (result.status === 409 && result.body.error_id === "stale_version") showStale(result.body.message);
      else toast(result.body.message || t("error", "Error"), "error");
      return false;
    }
    done();
    return true;
  }

  // Handover items: ticking sends done / undone; a refusal puts the box back.
  document.addEventListener("change", async function (event) {
    var box = event.target;
    if (!box.matches || !box.matches("[data-item-url]")) return;
    box.disabled = true;
    var result = await send("POST", box.dataset.itemUrl + (box.checked ? "/done" : "/undone"));
    box.disabled = false;
    if (!result.ok) { box.checked = !box.checked; toast(result.body.message || t("error", "Error"), "error"); return; }
    done();
  });

  // The disposition picker: typing filters the codes (by name or code); Enter ticks the only match.
  document.addEventListener("input", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("[data-tree-filter]")) return;
    var words = input.value.trim().toLowerCase();
    input.closest("fieldset").querySelectorAll("[data-code-row]").forEach(function (row) {
      row.hidden = words !== "" && row.dataset.words.toLowerCase().indexOf(words) === -1;
    });
  });
  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key !== "Enter" || event.ctrlKey || !input.matches || !input.matches("[data-tree-filter]")) return;
    event.preventDefault();
    var shown = Array.from(input.closest("fieldset").querySelectorAll("[data-code-row]:not([hidden]) input"));
    if (shown.length === 1) { shown[0].checked = !shown[0].checked; input.select(); }
    else if (shown.length) shown[0].focus();
  });
})();
