/* Queue administration: the queue editor (settings, then members with tiers) and the agents' routing
   profiles (capacities per channel). Both send JSON to /api/routing and show the API's problems next
   to the fields they concern; a stale version is explained with a way to reload. */
(function () {
  "use strict";

  var API = "/api/routing";
  var MAX_TIERS = 5;

  function errorMap(body) {
    var out = {};
    (Array.isArray(body.details) ? body.details : []).forEach(function (d) {
      if (d && d.field !== undefined && !(d.field in out)) out[d.field] = d.message;
    });
    return out;
  }
  function covers(prefix, field) { return field === prefix || field.indexOf(prefix + ".") === 0; }
  function intOrNull(value) { return value === "" || value === null || value === undefined ? null : Number(value); }
  function isStale(result) { return result.status === 409 && result.body.error_id === "stale_version"; }

  // What the form shows: numbers as text inputs hold them, the service level as a percentage.
  function formOf(queue) {
    var tiers = (queue.widen_after_s || []).map(String);
    while (tiers.length < MAX_TIERS - 1) tiers.push("");
    var text = function (v) { return v === null || v === undefined ? "" : String(v); };
    return {
      code: queue.code, name: queue.name, kind: queue.kind, team_id: text(queue.team_id), site_id: text(queue.site_id),
      skill: queue.skill || "", hours: queue.hours, working_days_only: !!queue.working_days_only,
      priority: text(queue.priority), strategy: queue.strategy, sl_seconds: text(queue.sl_seconds),
      sl_percent: text(Math.round((queue.sl_target || 0) * 1000) / 10), short_abandon_s: text(queue.short_abandon_s),
      max_wait_s: text(queue.max_wait_s), overflow_queue_id: text(queue.overflow_queue_id),
      overflow_threshold: text(queue.overflow_threshold), tiers: tiers, aging_per_minute: text(queue.aging_per_minute),
      vip_priority: text(queue.vip_priority), wrap_up: queue.wrap_up, wrap_up_s: text(queue.wrap_up_s),
      callback_offer: !!queue.callback_offer, alert_waiting: text(queue.alert_waiting), is_active: queue.is_active !== false,
    };
  }

  function payloadOf(f) {
    var percent = intOrNull(f.sl_percent);
    return {
      code: f.code.trim(), name: f.name.trim(), kind: f.kind, team_id: intOrNull(f.team_id), site_id: intOrNull(f.site_id),
      skill: f.skill || null, hours: f.hours.trim(), working_days_only: f.working_days_only,
      priority: intOrNull(f.priority), strategy: f.strategy, sl_seconds: intOrNull(f.sl_seconds),
      sl_target: percent === null ? null : percent / 100, short_abandon_s: intOrNull(f.short_abandon_s),
      max_wait_s: intOrNull(f.max_wait_s), overflow_queue_id: intOrNull(f.overflow_queue_id),
      overflow_threshold: intOrNull(f.overflow_threshold),
      widen_after_s: f.tiers.filter(function (t) { return String(t).trim() !== ""; }).map(Number),
      aging_per_minute: intOrNull(f.aging_per_minute), vip_priority: intOrNull(f.vip_priority), wrap_up: f.wrap_up,
      wrap_up_s: intOrNull(f.wrap_up_s), callback_offer: f.callback_offer, alert_waiting: intOrNull(f.alert_waiting),
      is_active: f.is_active,
    };
  }

  window.queueEditor = function () {
    var data = JSON.parse(document.getElementById("rt-queue-data").textContent);
    var uid = 0;
    return {
      id: data.queue.id, version: data.queue.version,
      f: formOf(data.queue),
      members: data.members.map(function (m) { return { uid: ++uid, user_id: String(m.user_id), tier: String(m.tier) }; }),
      agents: data.agents,
      savedMembers: JSON.stringify(data.members.map(function (m) { return { user_id: m.user_id, tier: m.tier }; })),
      busy: false, message: "", stale: false, errors: {}, memberErrors: {},

      err: function (field) {
        for (var key in this.errors) { if (covers(field, key)) return this.errors[key]; }
        return "";
      },
      memberErr: function (index) {
        for (var key in this.memberErrors) { if (covers(String(index), key)) return this.memberErrors[key]; }
        return "";
      },
      otherErrors: function () {
        var shown = this.$root.dataset.shown.split(" ");
        var self = this;
        return Object.keys(this.errors).filter(function (key) {
          return !shown.some(function (field) { return covers(field, key); });
        }).map(function (key) { return (key ? key + ": " : "") + self.errors[key]; });
      },
      addMember: function () { this.members.push({ uid: ++uid, user_id: "", tier: "1" }); },
      removeMember: function (index) { this.members.splice(index, 1); },
      unpicked: function (member) {
        var taken = this.members.filter(function (m) { return m !== member; }).map(function (m) { return m.user_id; });
        return this.agents.filter(function (a) { return taken.indexOf(String(a.id)) < 0; });
      },

      save: async function () {
        if (this.busy) return;
        this.busy = true;
        this.message = ""; this.stale = false; this.errors = {}; this.memberErrors = {};
        try {
          if (!(await this.saveQueue())) return;
          if (!(await this.saveMembers())) return;
          sessionStorage.setItem("pl-flash", "✓");
          window.location = this.$root.dataset.savedUrl;
        } finally {
          this.busy = false;
        }
      },
      saveQueue: async function () {
        var body = payloadOf(this.f);
        var result = this.id === null
          ? await window.plSend("POST", API + "/queues", body)
          : await window.plSend("PUT", API + "/queues/" + this.id, Object.assign(body, { version: this.version }));
        if (result.ok) {
          this.id = result.body.id;
          this.version = result.body.version;
          return true;
        }
        this.stale = isStale(result);
        this.message = this.stale ? this.$root.dataset.staleMessage : (result.body.message || this.$root.dataset.error);
        this.errors = errorMap(result.body);
        if (result.body.error_id === "duplicate_code") this.errors.code = result.body.message;
        this.focusFirstError();
        return false;
      },
      memberList: function () {
        return this.members.filter(function (m) { return m.user_id !== ""; })
          .map(function (m) { return { user_id: Number(m.user_id), tier: Number(m.tier) }; });
      },
      // only when they changed: every save of members is audited and reloads the agents' profiles
      saveMembers: async function () {
        var body = this.memberList();
        if (JSON.stringify(body) === this.savedMembers) return true;
        var result = await window.plSend("PUT", API + "/queues/" + this.id + "/members", body);
        if (result.ok) { this.savedMembers = JSON.stringify(body); return true; }
        this.message = result.body.message || this.$root.dataset.error;
        this.memberErrors = errorMap(result.body);
        if (!this.$root.dataset.editing) {
          // the queue exists now: stay on it so the members can be put right
          this.$root.dataset.editing = "1";
          history.replaceState(null, "", "/routing/queues/" + this.id);
        }
        return false;
      },
      focusFirstError: function () {
        var root = this.$root;
        this.$nextTick(function () {
          var first = root.querySelector("[aria-invalid=true]") || root.querySelector("[role=alert]");
          if (first && first.focus) first.focus();
        });
      },
      remove: async function () {
        if (this.id === null || !window.confirm(this.$root.dataset.confirmDelete)) return;
        var result = await window.plSend("DELETE", API + "/queues/" + this.id + "?version=" + this.version);
        if (!result.ok) {
          this.stale = isStale(result);
          this.message = this.stale ? this.$root.dataset.staleMessage : (result.body.message || this.$root.dataset.error);
          return;
        }
        sessionStorage.setItem("pl-flash", "✓");
        window.location = this.$root.dataset.savedUrl;
      },
    };
  };

  // One agent's routing profile on the queues page: edited in place.
  window.profileRow = function (profile, channels) {
    var capacities = {};
    channels.forEach(function (c) { capacities[c] = String((profile.capacities || {})[c] === undefined ? 0 : profile.capacities[c]); });
    return {
      p: profile, editing: false, busy: false, message: "", stale: false, errors: {},
      form: { capacities: capacities, extension: profile.extension || "", auto_answer: !!profile.auto_answer },
      err: function (field) {
        for (var key in this.errors) { if (covers(field, key)) return this.errors[key]; }
        return "";
      },
      save: async function () {
        if (this.busy) return;
        this.busy = true;
        this.message = ""; this.stale = false; this.errors = {};
        var caps = {};
        var form = this.form;
        Object.keys(form.capacities).forEach(function (c) { caps[c] = intOrNull(form.capacities[c]); });
        try {
          var result = await window.plSend("PUT", API + "/agents/" + this.p.user_id + "/profile", {
            capacities: caps, extension: form.extension.trim() || null, auto_answer: form.auto_answer, version: this.p.version,
          });
          if (!result.ok) {
            this.stale = isStale(result);
            this.message = this.stale ? this.$root.dataset.staleMessage : (result.body.message || this.$root.dataset.error);
            this.errors = errorMap(result.body);
            return;
          }
          this.p = Object.assign({}, this.p, result.body);
          this.editing = false;
          window.plToast(this.$root.dataset.saved, "ok");
        } finally {
          this.busy = false;
        }
      },
    };
  };
})();
