/* The administrator's work-order types: the type editor (form fields, deadline policy, SMS templates)
   and the departments' contacts. Both send JSON to /api/workorders and show the API's errors by field. */
(function () {
  "use strict";

  var SHOWN = ["code", "name", "group", "description", "categories", "default_department_id", "position", "fields",
    "policy.reply", "policy.result", "policy.warn_at", "policy.escalate_after_hours", "policy.working_hours",
    "policy.callback_attempts", "policy.callback_retry_minutes", "policy.auto_close_days", "sms_templates"];
  var MOMENTS = ["received", "replied", "resolved", "callback_missed"];
  var uid = 0;

  function number(value) { return value === "" || value === null || value === undefined ? null : Number(value); }
  function covers(prefix, field) { return field === prefix || field.indexOf(prefix + ".") === 0; }

  function errorMap(body) {
    var out = {};
    (Array.isArray(body.details) ? body.details : []).forEach(function (d) {
      if (d && d.field !== undefined && !(d.field in out)) out[d.field] = d.message;
    });
    if (body.details && !Array.isArray(body.details) && typeof body.details === "object") {
      Object.keys(body.details).forEach(function (key) {
        var value = body.details[key];
        if (typeof value === "string") out[key] = value;
      });
    }
    return out;
  }

  function row(field) {
    var extra = Object.assign({}, field);
    ["key", "label", "kind", "required", "choices", "help"].forEach(function (k) { delete extra[k]; });
    return {
      uid: ++uid, key: field.key || "", label: field.label || "", kind: field.kind || "text",
      required: !!field.required, choicesText: (field.choices || []).join(", "), help: field.help || "", extra: extra,
    };
  }

  function fieldOf(r) {
    var out = Object.assign({}, r.extra, { key: r.key.trim(), label: r.label.trim(), kind: r.kind, required: r.required, help: r.help });
    out.choices = r.kind === "choice" ? r.choicesText.split(/[\n,，、]/).map(function (c) { return c.trim(); }).filter(Boolean) : [];
    return out;
  }

  window.typeEditor = function () {
    var data = JSON.parse(document.getElementById("wo-type-data").textContent);
    var type = data.type;
    var policy = type.policy || {};
    var escalation = (policy.escalate_after_hours || []).map(String);
    while (escalation.length < 3) escalation.push("");
    return {
      smsCodes: data.sms_codes || [],
      busy: false,
      message: "",
      errors: {},
      fieldsJson: "",
      jsonError: "",
      t: {
        id: type.id, version: type.version, code: type.code, name: type.name, group: type.group,
        description: type.description || "", categoriesText: (type.categories || []).join("\n"),
        default_department_id: type.default_department_id === null ? "" : String(type.default_department_id),
        position: type.position || 0, is_active: type.is_active !== false,
        fields: (type.fields || []).map(row),
        sms: MOMENTS.reduce(function (acc, m) { acc[m] = (type.sms_templates || {})[m] || ""; return acc; }, {}),
      },
      p: {
        replyOn: !!policy.reply, reply: policy.reply ? Object.assign({}, policy.reply) : { amount: 24, unit: "hours" },
        resultOn: !!policy.result, result: policy.result ? Object.assign({}, policy.result) : { amount: 5, unit: "working_days" },
        warnPercent: Math.round((policy.warn_at || 0.8) * 100), escalation: escalation,
        working_hours: policy.working_hours || "", callback_attempts: policy.callback_attempts || 3,
        callback_retry_minutes: policy.callback_retry_minutes || 60, call_back_on_reply: !!policy.call_back_on_reply,
        auto_close_days: policy.auto_close_days === undefined ? 7 : policy.auto_close_days,
      },

      // the first problem reported for this field (or, with `below`, for anything inside it)
      err: function (field, below) {
        for (var key in this.errors) {
          if (key === field || (below && covers(field, key))) return this.errors[key];
        }
        return "";
      },
      otherErrors: function () {
        var errors = this.errors;
        return Object.keys(errors).filter(function (key) {
          return !SHOWN.some(function (prefix) { return covers(prefix, key); });
        }).map(function (key) { return (key ? key + ": " : "") + errors[key]; });
      },

      addField: function () {
        this.t.fields.push(row({ kind: "text" }));
        var self = this;
        this.$nextTick(function () {
          var inputs = self.$root.querySelectorAll(".wo-fields tbody tr td:first-child input");
          if (inputs.length) inputs[inputs.length - 1].focus();
        });
      },
      removeField: function (index) { this.t.fields.splice(index, 1); },
      currentJson: function () { return JSON.stringify(this.t.fields.map(fieldOf), null, 2); },
      applyJson: function () {
        var form = this.$root;
        try {
          var parsed = JSON.parse(this.fieldsJson);
          if (!Array.isArray(parsed)) throw new Error("not a list");
          this.t.fields = parsed.map(function (f) { return row(f || {}); });
          this.jsonError = "";
        } catch (e) {
          this.jsonError = form.dataset.badJson;
        }
      },

      payload: function () {
        var t = this.t, p = this.p;
        var sms = {};
        MOMENTS.forEach(function (m) { if (t.sms[m].trim()) sms[m] = t.sms[m].trim(); });
        var body = {
          code: t.code.trim(), name: t.name.trim(), group: t.group, description: t.description,
          fields: t.fields.map(fieldOf),
          categories: t.categoriesText.split("\n").map(function (c) { return c.trim(); }).filter(Boolean),
          default_department_id: number(t.default_department_id), position: number(t.position) || 0,
          is_active: t.is_active, sms_templates: sms,
          policy: {
            reply: p.replyOn ? { amount: number(p.reply.amount), unit: p.reply.unit } : null,
            result: p.resultOn ? { amount: number(p.result.amount), unit: p.result.unit } : null,
            warn_at: number(p.warnPercent) === null ? null : number(p.warnPercent) / 100,
            escalate_after_hours: p.escalation.filter(function (h) { return String(h).trim() !== ""; }).map(Number),
            working_hours: p.working_hours.trim(), callback_attempts: number(p.callback_attempts),
            callback_retry_minutes: number(p.callback_retry_minutes), call_back_on_reply: p.call_back_on_reply,
            auto_close_days: number(p.auto_close_days),
          },
        };
        if (t.id) body.version = t.version;
        return body;
      },

      save: async function (form) {
        this.busy = true;
        try {
          var t = this.t;
          var result = await window.plSend(t.id ? "PUT" : "POST", "/api/workorders/types" + (t.id ? "/" + t.id : ""), this.payload());
          if (!result.ok) {
            this.errors = errorMap(result.body);
            if (this.errors["policy.warn_at"]) this.errors["policy.warn_at"] = form.dataset.warnRange; // a share, shown in per cent
            this.message = result.body.message || "";
            window.plToast(this.message, "error");
            var invalid = form.querySelector("[aria-invalid=true]");
            if (invalid) invalid.focus(); else form.scrollIntoView();
            return;
          }
          sessionStorage.setItem("pl-flash", "✓");
          window.location = form.dataset.savedUrl;
        } finally {
          this.busy = false;
        }
      },
    };
  };

  window.contactRow = function (departmentId, version) {
    return {
      version: version,
      errors: {},
      busy: false,
      save: async function (button) {
        var tr = button.closest("tr");
        var value = function (name) { var v = tr.querySelector("[name=" + name + "]").value.trim(); return v === "" ? null : v; };
        var body = { sms_phone: value("sms_phone"), email: value("email"), head_user_id: number(value("head_user_id")) };
        if (this.version !== null) body.version = this.version;
        this.busy = true;
        try {
          var result = await window.plSend("PUT", "/api/workorders/department-contacts/" + departmentId, body);
          if (!result.ok) {
            this.errors = errorMap(result.body);
            window.plToast(result.body.message || "Error", "error");
            return;
          }
          this.errors = {};
          this.version = result.body.version;
          window.plToast((JSON.parse(document.body.dataset.messages || "{}").saved) || "Saved", "ok");
        } finally {
          this.busy = false;
        }
      },
    };
  };
})();
