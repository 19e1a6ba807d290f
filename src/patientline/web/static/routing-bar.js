/* The agent bar: presence with a timer, the ringing offer with its countdown, the tasks in hand.
   Fed by GET /api/routing/me and the page's event stream (routing.offer, routing.offer_ended,
   routing.agent); read again after every reconnect. Alt+R ready, Alt+N not ready, Alt+A accept,
   Alt+X decline, Alt+C complete, Alt+W end wrap-up, Alt+H hold or resume the call (app.js leaves Alt
   combinations alone). Accepting a task opens its contact in the agent workbench (the screen pop),
   unless data-screen-pop="off".
   A voice task in hand gets the call's controls (hold, transfer to a queue, a department's seats, an
   expert centre, a colleague or an outside number (GET /api/voice/transfer-targets), consult a colleague and
   then hand over, join all three or cancel, hang up): its live call is read from GET /api/voice/live
   every two seconds while such a task is in hand. A server without the phone line (409 voice_off)
   shows no call controls.
   Call out (Alt+O): a number and the caller ID the patient sees (POST /api/voice/outbound); the
   agent's phone rings first, then the number. Other pages ask for a call with a `pl:dial` event
   whose detail is the request's body (a patient's phone on file: {patient_phone_id}). The call is
   then a row of its own with the same controls, read with the other live calls. */
(function () {
  "use strict";

  var API = "/api/routing";
  var VOICE_API = "/api/voice";
  var VOICE = VOICE_API + "/live";
  var POLL_WHEN_NOT_LIVE_MS = 15000;
  var CALL_POLL_MS = 2000;

  var fill = window.plText.fill, duration = window.plText.duration, clockOffset = window.plText.clockOffset;
  // The caller as the router gives it: a masked number and perhaps a name (a string in older payloads).
  function callerText(caller) {
    if (!caller) return "";
    if (typeof caller === "string") return caller;
    return [caller.name, caller.phone_masked || caller.phone].filter(Boolean).join(" · ");
  }
  function onEvents(hook) {
    if (window.plEvents) hook(window.plEvents);
    else document.addEventListener("alpine:initialized", function () { if (window.plEvents) hook(window.plEvents); }, { once: true });
  }

  window.agentBar = function () {
    var texts = JSON.parse(document.getElementById("rt-bar-texts").textContent);
    return {
      texts: texts,
      userId: null,
      status: "offline", reason: null, since: null, offer: null, tasks: [], handledToday: 0, wrapUpUntil: null,
      loaded: false, unavailable: false, live: false, busy: false, menu: false, now: Date.now(), offset: 0,
      refreshTimer: null,
      queue: Promise.resolve(true),
      // the live calls of voice tasks in hand (by task id), and the call controls' state
      calls: {}, voiceOff: false, callsReading: false, callBusy: false,
      callPanel: null, transferTo: "", transferNumber: "", consultTarget: "", consulted: {}, dialling: null,
      targets: { queues: [], colleagues: [] }, // where a call can be passed, read when a panel opens
      // calling out
      dialPanel: false, dialNumber: "", dialCallerId: "", callerIds: [], trunk: false, callingOut: false,

      init: function () {
        var self = this;
        this.userId = Number(this.$el.dataset.userId);
        this.refresh();
        setInterval(function () { self.now = Date.now(); }, 1000);
        setInterval(function () { if (!self.live || self.unavailable) self.refresh(); }, POLL_WHEN_NOT_LIVE_MS);
        setInterval(function () { self.readCalls(); }, CALL_POLL_MS);
        document.addEventListener("pl:dial", function (event) { self.dialOut(event.detail || {}); });
        this.readCallerIds();
        document.addEventListener("keydown", function (event) { self.hotkey(event); });
        onEvents(function (source) { self.listen(source); });
      },

      listen: function (source) {
        var self = this;
        var opened = source.readyState === 1;
        this.live = opened;
        source.addEventListener("open", function () {
          self.live = true;
          if (opened) self.refresh(); // a reconnect: what happened meanwhile is read again
          opened = true;
        });
        source.addEventListener("error", function () { self.live = false; });
        source.addEventListener("routing.offer", function (message) { self.offered(JSON.parse(message.data).payload); });
        source.addEventListener("routing.offer_ended", function (message) { self.offerEnded(JSON.parse(message.data).payload); });
        source.addEventListener("routing.agent", function (message) {
          var p = JSON.parse(message.data).payload;
          if (Number(p.user_id) !== self.userId) return;
          self.status = p.status; self.reason = p.reason || null; self.since = p.since;
          self.refreshSoon(); // tasks, wrap-up end and the day's count come with /me
        });
      },

      refresh: async function () {
        try {
          var response = await fetch(API + "/me", { headers: { Accept: "application/json" }, credentials: "same-origin" });
          this.unavailable = response.status === 503; // a standby node, or the router restarting
          if (!response.ok) return;
          this.offset = clockOffset(response);
          this.apply(await response.json());
        } catch (e) { /* offline: the next event or poll reads it again */ }
      },
      refreshSoon: function () {
        var self = this;
        clearTimeout(this.refreshTimer);
        this.refreshTimer = setTimeout(function () { self.refresh(); }, 150);
      },
      apply: function (me) {
        this.status = me.status || "offline";
        this.reason = me.reason || null;
        this.since = me.since || null;
        this.offer = me.offer || null;
        this.tasks = me.tasks || [];
        this.handledToday = me.handled_today || 0;
        this.wrapUpUntil = me.wrap_up_until || null;
        this.loaded = true;
        this.ring();
        this.readCalls();
      },
      offered: function (offer) {
        this.offer = offer;
        this.status = "offered";
        this.ring();
      },
      offerEnded: function (ended) {
        if (this.offer && Number(this.offer.task_id) === Number(ended.task_id)) {
          this.offer = null;
          var note = this.texts.ended[ended.reason];
          if (note) window.plToast(note, ended.reason === "timeout" ? "error" : "info");
        }
        this.ring();
        this.refreshSoon();
      },
      // the tab's title rings too, for an agent looking at another window
      ring: function () {
        var mark = "☎ ";
        var title = document.title.indexOf(mark) === 0 ? document.title.slice(mark.length) : document.title;
        document.title = this.offer ? mark + title : title;
      },

      // one step at a time, in the order given: a hotkey pressed while a step is on its way waits for it
      post: function (url, body, then) {
        var self = this;
        var step = this.queue.then(function () { return self.send(url, body, then); });
        this.queue = step.catch(function () { return false; });
        return step;
      },
      send: async function (url, body, then) {
        this.busy = true;
        try {
          var result = await window.plSend("POST", url, body);
          if (!result.ok) { window.plToast(result.body.message || this.texts.error, "error"); }
          if (result.ok && "status" in result.body && "tasks" in result.body) this.apply(result.body); // presence steps answer /me
          if (result.ok && then) then.call(this, result.body);
          return result.ok;
        } finally {
          this.busy = false;
          this.refreshSoon();
        }
      },
      login: function () { return this.post(API + "/me/login"); },
      logout: function () { return this.post(API + "/me/logout"); },
      ready: function () { return this.post(API + "/me/ready"); },
      notReady: function (reason) { this.menu = false; return this.post(API + "/me/not-ready", { reason: reason }); },
      endWrapUp: function () { return this.post(API + "/me/wrap-up/end"); },
      accept: function () { return this.offer && this.post(API + "/tasks/" + this.offer.task_id + "/accept", undefined, this.screenPop); },
      // The screen pop: the accepted task's contact opens in the workbench, a chat in the chat desk (ids only: no caller data in the URL).
      screenPop: function (task) {
        if (!task || !task.contact_id || this.$root.dataset.screenPop === "off") return;
        var chat = task.channel === "chat" && /^chat:([0-9a-f]{32})$/.exec(task.external_ref || "");
        if (chat) return window.location.assign("/chat/desk?chat=" + chat[1]);  // the chat desk, with the transcript
        window.location.assign("/workbench/contacts/" + encodeURIComponent(task.contact_id));
      },
      decline: function () { return this.offer && this.post(API + "/tasks/" + this.offer.task_id + "/decline"); },
      complete: function (task, wrapUp) {
        return this.post(API + "/tasks/" + task.id + "/complete", { wrap_up: !!wrapUp });
      },

      openMenu: function () {
        var self = this;
        this.menu = true;
        this.$nextTick(function () {
          var first = self.$root.querySelector(".rt-menu button");
          if (first) first.focus();
        });
      },
      menuKey: function (event) {
        var items = Array.from(this.$root.querySelectorAll(".rt-menu button"));
        var at = items.indexOf(document.activeElement);
        if (event.key === "ArrowDown") { event.preventDefault(); items[(at + 1) % items.length].focus(); }
        if (event.key === "ArrowUp") { event.preventDefault(); items[(at - 1 + items.length) % items.length].focus(); }
        if (event.key === "Escape") { this.menu = false; this.$refs.notReady.focus(); }
      },

      // what may be done now
      canReady: function () { return this.status === "not_ready"; },
      canNotReady: function () { return this.status !== "offline" && this.status !== "not_ready"; },
      canChangeReason: function () { return this.status === "not_ready"; },

      hotkey: function (event) {
        if (!event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
        var actions = {
          KeyR: this.canReady() ? this.ready : null,
          KeyN: this.status !== "offline" ? this.openMenu : null,
          KeyA: this.offer ? this.accept : null,
          KeyX: this.offer ? this.decline : null,
          KeyC: this.tasks.length ? function () { return this.complete(this.tasks[0], false); } : null,
          KeyW: this.status === "wrap_up" ? this.endWrapUp : null,
          KeyH: this.holdable() ? function () { return this.toggleHold(this.holdable()); } : null,
          KeyO: this.callerIds.length ? this.openDial : null,
        };
        var action = actions[event.code];
        if (!action) return;
        event.preventDefault();
        action.call(this);
      },

      statusText: function () { return this.texts.status[this.status] || this.status; },
      reasonText: function () { return this.reason ? (this.texts.reason[this.reason] || this.reason) : ""; },
      statusLine: function () { return this.reason ? this.statusText() + " · " + this.reasonText() : this.statusText(); },
      channelText: function (channel) { return this.texts.channel[channel] || channel; },
      callerText: callerText,
      elapsed: function () {
        if (!this.since) return "";
        return duration((this.now + this.offset - Date.parse(this.since)) / 1000);
      },
      offerLeft: function () {
        if (!this.offer || !this.offer.expires_at) return "";
        var left = Math.max(0, Math.ceil((Date.parse(this.offer.expires_at) - this.now - this.offset) / 1000));
        return fill(this.texts.rings_for, { seconds: left });
      },
      wrapUpLeft: function () {
        if (this.status !== "wrap_up" || !this.wrapUpUntil) return "";
        return fill(this.texts.wrap_up_left, { time: duration((Date.parse(this.wrapUpUntil) - this.now - this.offset) / 1000) });
      },
      incoming: function () { return this.offer ? fill(this.texts.incoming, { channel: this.channelText(this.offer.channel) }) : ""; },
      handledText: function () { return fill(this.texts.handled, { count: this.handledToday }); },

      // ---- the call of a voice task in hand ----
      voiceTasks: function () { return this.tasks.filter(function (task) { return task.channel === "voice"; }); },
      readCalls: async function () {
        if (this.voiceOff || this.callsReading) return;
        var outbound = this.callingOut || this.outboundRows().length || this.reason === "outbound";
        if (!this.voiceTasks().length && !outbound) { this.calls = {}; return; }
        this.callsReading = true;
        try {
          var response = await fetch(VOICE, { headers: { Accept: "application/json" }, credentials: "same-origin" });
          var body = await response.json().catch(function () { return {}; });
          if (response.status === 409 && body.error_id === "voice_off") { this.voiceOff = true; this.calls = {}; return; }
          if (!response.ok || !Array.isArray(body)) return;
          var calls = {};
          var self = this;
          body.forEach(function (call) {
            if (call.stage === "ended") return;
            if (call.direction === "outbound" && call.agent_id === self.userId) calls["out-" + call.id] = call;
            else if (call.task_id !== null) calls[call.task_id] = call;
          });
          this.calls = calls;
        } catch (e) { /* offline: read again on the next tick */ } finally {
          this.callsReading = false;
        }
      },
      // the agent's own outbound calls, as rows shaped like tasks for the call controls
      outboundRows: function () {
        return Object.keys(this.calls).filter(function (key) { return key.indexOf("out-") === 0; })
          .map(function (key) { return { id: key, channel: "voice", outbound: true, queue_id: null }; });
      },
      dialNote: function (task) {
        var call = this.callOf(task);
        if (!call) return "";
        return call.stage === "ringing_agent" ? this.texts.call.ringing_agent : fill(this.texts.call.dialling, { number: call.caller_masked });
      },
      // the numbers the patient may see; none (no button) where the server runs no phone line
      readCallerIds: async function () {
        try {
          var response = await fetch("/api/voice/outbound/caller-ids", { headers: { Accept: "application/json" }, credentials: "same-origin" });
          if (!response.ok) return;
          var body = await response.json();
          this.callerIds = body.caller_ids || [];
          this.trunk = Boolean(body.trunk);
          this.dialCallerId = this.callerIds[0] || "";
        } catch (e) { /* offline: no calling out from this page */ }
      },
      openDial: function () {
        var self = this;
        this.dialPanel = !this.dialPanel;
        if (this.dialPanel) this.$nextTick(function () { var field = self.$root.querySelector("#rt-dial-number"); if (field) field.focus(); });
      },
      // waits until the agent's own phone answered (a few seconds at most), then the row shows the rest
      dialOut: async function (body) {
        this.dialPanel = false;
        this.callBusy = this.callingOut = true;
        try {
          var result = await window.plSend("POST", "/api/voice/outbound", body);
          if (!result.ok) { window.plToast(result.body.message || this.texts.error, "error"); return false; }
          var calls = Object.assign({}, this.calls);
          calls["out-" + result.body.id] = result.body;
          this.calls = calls;
          this.dialNumber = "";
          return true;
        } finally {
          this.callBusy = this.callingOut = false;
        }
      },
      callOf: function (task) { return task.channel === "voice" && !this.voiceOff ? this.calls[task.id] || null : null; },
      // the agent still has the conversation (not after a hand-over or a supervisor's take-over)
      inCall: function (task) {
        var call = this.callOf(task);
        return Boolean(call && call.stage === "talking" && call.talker === "agent" && call.agent_id === this.userId);
      },
      canHold: function (task) { return this.inCall(task) && !this.callOf(task).third && !this.dialling; },
      holdable: function () {
        var self = this;
        return this.tasks.concat(this.outboundRows()).filter(function (task) { return self.canHold(task); })[0] || null;
      },
      // what the agent is told: nothing of a supervisor listening in
      callNotes: function (task) {
        var call = this.callOf(task);
        var c = this.texts.call;
        if (!call) return [];
        var notes = [];
        if (this.dialling && this.dialling.task === task.id) notes.push(fill(c.calling, { target: this.dialling.target }));
        else if (call.third === "consult") notes.push(this.consulted[task.id] ? fill(c.consulting_with, { target: this.consulted[task.id] }) : c.consulting);
        else if (call.third === "conference") notes.push(c.conference);
        else if (call.hold) notes.push(c.on_hold);
        if (call.watch === "whisper") notes.push(c.whisper);
        if (call.watch === "barge") notes.push(c.barge);
        return notes;
      },
      // where the call can go: the queues by kind (but the one it is in), then the colleagues
      transferGroups: function (task) {
        var t = this.texts.transfer;
        var status = this.texts.status;
        var groups = ["skill_group", "department_seats", "expert_centre"].map(function (kind) {
          return {
            label: t[kind],
            options: this.targets.queues.filter(function (q) { return q.kind === kind && q.id !== task.queue_id; }).map(function (q) {
              return { value: "queue:" + q.id, text: q.open ? q.name : fill(t.closed, { name: q.name }) };
            }),
          };
        }, this);
        groups.push({
          label: t.colleagues,
          options: this.targets.colleagues.map(function (c) {
            return { value: "user:" + c.username, text: fill(t.colleague, { name: c.name, status: status[c.status] || c.status }) };
          }),
        });
        return groups.filter(function (group) { return group.options.length; });
      },
      readTargets: async function () {
        try {
          var response = await fetch(VOICE_API + "/transfer-targets", { headers: { Accept: "application/json" }, credentials: "same-origin" });
          if (response.ok) this.targets = await response.json();
        } catch (e) { /* offline: the panel keeps what it had */ }
      },
      panelOpen: function (task, kind) { return this.callPanel === task.id + ":" + kind; },
      openPanel: function (task, kind) {
        var self = this;
        if (this.panelOpen(task, kind)) { this.callPanel = null; return; }
        this.callPanel = task.id + ":" + kind;
        this.transferTo = this.transferNumber = this.consultTarget = "";
        this.readTargets();
        this.$nextTick(function () {
          var field = self.$root.querySelector("#rt-" + kind + "-" + task.id);
          if (field) field.focus();
        });
      },
      closePanel: function (task, kind) { if (this.panelOpen(task, kind)) this.callPanel = null; },

      // one call step at a time; a consultation waits until the colleague answers (up to 40 s)
      callStep: async function (task, path, body) {
        var call = this.callOf(task);
        if (!call) return false;
        this.callBusy = true;
        try {
          var result = await window.plSend("POST", VOICE + "/" + call.id + path, body);
          if (!result.ok) { window.plToast(result.body.message || this.texts.error, "error"); return false; }
          var fresh = result.body;
          var calls = Object.assign({}, this.calls);
          if (fresh.stage === "ended" || fresh.agent_id !== this.userId) delete calls[task.id];
          else calls[task.id] = fresh;
          this.calls = calls;
          return true;
        } finally {
          this.callBusy = false;
          this.refreshSoon(); // a transfer, hand-over or hang-up takes the task out of hand
        }
      },
      toggleHold: function (task) { var call = this.callOf(task); return call && this.callStep(task, "/hold", { on: !call.hold }); },
      hangUp: function (task) { this.callPanel = null; return this.callStep(task, "/hangup"); },
      transfer: function (task) {
        var number = this.transferNumber.trim();
        var chosen = this.transferTo.split(":");
        if (!number && chosen.length !== 2) return;
        this.callPanel = null;
        var body = number ? { target: number } : chosen[0] === "queue" ? { queue_id: Number(chosen[1]) } : { target: chosen[1] };
        return this.callStep(task, "/transfer", body);
      },
      consult: async function (task) {
        var target = this.consultTarget.trim();
        if (!target) return;
        this.callPanel = null;
        this.dialling = { task: task.id, target: target };
        try {
          if (await this.callStep(task, "/consult", { target: target })) this.consulted[task.id] = target;
        } finally {
          this.dialling = null;
        }
      },
      endConsult: function (task, how) { return this.callStep(task, "/consult/end", { how: how }); },
    };
  };
})();
