/* The supervisor's live calls (/voice/live): GET /api/voice/live every two seconds, shown with the
   queue's and the agent's names (from the page's data), the time on the line ticking every second, and
   the supervision controls of a connected call (POST /api/voice/live/{id}/supervise and /hangup; take
   over and hang up are confirmed first). A 409 voice_off means this server runs no phone line: the page
   says so and stops asking. */
(function () {
  "use strict";

  var API = "/api/voice/live";
  var REFRESH_MS = 2000;

  var fill = window.plText.fill, duration = window.plText.duration, clockOffset = window.plText.clockOffset;
  function json(id) { return JSON.parse(document.getElementById(id).textContent); }

  window.voiceLive = function () {
    var texts = json("vl-texts");
    var data = json("vl-data");
    return {
      texts: texts,
      queues: data.queues || {},
      people: data.people || {},
      state: data.line_on ? "loading" : "off", // loading, on, off, failed
      calls: [], busy: false, pending: null, reading: false, now: Date.now(), offset: 0, timer: null, testing: false,

      init: function () {
        var self = this;
        this.refresh(); // asked even when the page was told the line is off: the API has the last word
        this.timer = setInterval(function () { self.refresh(); }, REFRESH_MS);
        setInterval(function () { self.now = Date.now(); }, 1000);
      },

      // a test call now; the page shows it with the earlier ones
      testLine: async function () {
        this.testing = true;
        try {
          var result = await window.plSend("POST", "/api/voice/self-tests");
          if (!result.ok) { window.plToast(result.body.message || texts.error, "error"); return; }
          window.location.reload();
        } finally {
          this.testing = false;
        }
      },
      refresh: async function () {
        if (this.reading) return;
        this.reading = true;
        try {
          var response = await fetch(API, { headers: { Accept: "application/json" }, credentials: "same-origin" });
          var body = await response.json().catch(function () { return {}; });
          if (response.status === 409 && body.error_id === "voice_off") {
            this.state = "off";
            this.calls = [];
            clearInterval(this.timer); // the voice role is chosen when the server starts
            return;
          }
          if (!response.ok) { this.state = "failed"; return; }
          this.offset = clockOffset(response);
          this.calls = body;
          this.state = "on";
        } catch (e) {
          if (this.state !== "off") this.state = "failed";
        } finally {
          this.reading = false;
        }
      },

      // ---- what a row shows ----
      stageText: function (call) { return this.texts.stages[call.stage] || call.stage; },
      onLine: function (call) { return duration((this.now + this.offset - Date.parse(call.started_at)) / 1000); },
      queueName: function (id) {
        if (id === null || id === undefined) return "—";
        return this.queues[String(id)] || fill(this.texts.unknown_queue, { id: id });
      },
      agentName: function (id) {
        if (id === null || id === undefined) return "—";
        return this.people[String(id)] || fill(this.texts.unknown_agent, { id: id });
      },
      lastStep: function (call) { return (call.ivr_path || []).length ? call.ivr_path[call.ivr_path.length - 1] : ""; },
      notes: function (call) {
        var notes = [];
        if (call.talker === "supervisor") notes.push(this.texts.taken_over);
        if (call.talker === "third") notes.push(this.texts.handed_over);
        if (call.third === "consult") notes.push(this.texts.consulting);
        else if (call.third === "conference") notes.push(this.texts.conference);
        else if (call.hold) notes.push(this.texts.on_hold);
        if (call.watch && this.texts.watch[call.watch]) notes.push(this.texts.watch[call.watch]);
        return notes;
      },
      callerOf: function (call) { return call.caller_masked || this.texts.unknown_caller; },

      // ---- supervision ----
      supervise: function (call, mode) {
        if (mode === "take_over" && !window.confirm(fill(this.texts.confirm_take_over, { caller: this.callerOf(call) }))) return;
        return this.send(call, "/supervise", { mode: mode }, mode !== "leave");
      },
      hangUp: function (call) {
        if (!window.confirm(fill(this.texts.confirm_hang_up, { caller: this.callerOf(call) }))) return;
        return this.send(call, "/hangup", undefined, false);
      },
      // one step at a time; joining the call waits until the supervisor's phone answers
      send: async function (call, path, body, rings) {
        if (this.busy) return;
        this.busy = true;
        if (rings && !call.watch) this.pending = call.id;
        try {
          var result = await window.plSend("POST", API + "/" + call.id + path, body);
          if (!result.ok) { window.plToast(result.body.message || this.texts.error, "error"); return; }
          var fresh = result.body;
          this.calls = this.calls.map(function (c) { return c.id === fresh.id ? fresh : c; });
        } finally {
          this.busy = false;
          this.pending = null;
          this.refresh();
        }
      },
    };
  };
})();
