/* The supervisor's wallboard: queue tiles, agents and a queue's waiting list from GET /api/routing/live,
   kept live by routing.queue and routing.agent events, read again every 30 s and after a reconnect.
   Supervisor actions (force ready / not ready / log out, move a task, change its priority) post to the
   API. Big-screen mode (?big=1 or the toggle): no navigation, large type, the grid fits the screen. */
(function () {
  "use strict";

  var API = "/api/routing";
  var REFRESH_MS = 30000;

  var fill = window.plText.fill, pad = window.plText.pad, duration = window.plText.duration;
  function callerText(caller) {
    if (!caller) return "";
    if (typeof caller === "string") return caller;
    return [caller.name, caller.phone_masked || caller.phone].filter(Boolean).join(" · ");
  }
  function percent(value) { return value === null || value === undefined ? "—" : Math.round(value * 100) + " %"; }

  window.wallboard = function () {
    var root = document.getElementById("rt-wallboard-texts");
    var texts = JSON.parse(root.textContent);
    return {
      texts: texts,
      queues: [], agents: [], loaded: false, failed: false, live: false, big: false,
      now: Date.now(), receivedAt: {}, // queue id -> when its longest wait was read (it ticks from there)
      selected: null, waiting: [], waitingLoaded: false, waitingAt: 0,
      busy: false, refreshTimer: null, waitingTimer: null,
      lineAlarm: "", // the phone line's last self-test, when it failed

      init: function () {
        var self = this;
        this.big = new URLSearchParams(location.search).get("big") === "1";
        document.body.classList.toggle("rt-big", this.big);
        this.refresh();
        setInterval(function () { self.now = Date.now(); }, 1000);
        setInterval(function () { self.refresh(); }, REFRESH_MS); // also when the event stream is down
        this.readLineTest();
        setInterval(function () { self.readLineTest(); }, REFRESH_MS);
        var hook = function () {
          var source = window.plEvents;
          if (!source) return;
          var opened = source.readyState === 1;
          self.live = opened;
          source.addEventListener("open", function () {
            self.live = true;
            if (opened) self.refresh();
            opened = true;
          });
          source.addEventListener("error", function () { self.live = false; });
          source.addEventListener("routing.queue", function (message) { self.queueChanged(JSON.parse(message.data).payload); });
          source.addEventListener("routing.agent", function (message) { self.agentChanged(JSON.parse(message.data).payload); });
        };
        if (window.plEvents) hook(); else document.addEventListener("alpine:initialized", hook, { once: true });
      },

      refresh: async function () {
        try {
          var response = await fetch(API + "/live", { headers: { Accept: "application/json" }, credentials: "same-origin" });
          if (!response.ok) { this.failed = true; return; }
          var live = await response.json();
          var at = Date.now();
          var self = this;
          this.queues = live.queues || [];
          this.queues.forEach(function (q) { self.receivedAt[q.id] = at; });
          this.agents = live.agents || [];
          this.loaded = true;
          this.failed = false;
          if (this.selected !== null) this.loadWaiting();
        } catch (e) {
          this.failed = true;
        }
      },
      readLineTest: async function () {
        try {
          var response = await fetch("/api/voice/self-tests?limit=1", { headers: { Accept: "application/json" }, credentials: "same-origin" });
          if (!response.ok) return;
          var last = (await response.json())[0];
          var at = last ? new Date(last.started_at) : null;
          this.lineAlarm = last && !last.ok ? fill(this.texts.line_alarm, {
            time: pad(at.getHours()) + ":" + pad(at.getMinutes()), problem: last.problem_text }) : "";
        } catch (e) { /* offline: the next refresh reads it again */ }
      },
      // at most one read per second however many events arrive (never put off by a steady stream)
      refreshSoon: function () {
        var self = this;
        if (this.refreshTimer) return;
        this.refreshTimer = setTimeout(function () { self.refreshTimer = null; self.refresh(); }, 1000);
      },
      queueChanged: function (queue) {
        var at = this.queues.findIndex(function (q) { return q.id === queue.id; });
        if (at < 0) { this.refreshSoon(); return; }
        this.queues.splice(at, 1, Object.assign({}, this.queues[at], queue));
        this.receivedAt[queue.id] = Date.now();
        if (this.selected === queue.id) this.loadWaitingSoon();
      },
      agentChanged: function (change) {
        var agent = this.agents.find(function (a) { return a.user_id === change.user_id; });
        if (!agent) { this.refreshSoon(); return; }
        // a contact taken or finished changes the day's count, which the event does not carry
        if (change.status === "busy" || agent.status === "busy" || agent.status === "wrap_up") this.refreshSoon();
        agent.status = change.status;
        agent.reason = change.reason || null;
        agent.since = change.since;
      },

      // --- a queue's waiting list ---
      showWaiting: function (queue) {
        if (this.selected === queue.id) { this.selected = null; this.waiting = []; return; }
        this.selected = queue.id;
        this.waiting = [];
        this.waitingLoaded = false;
        this.loadWaiting();
      },
      loadWaitingSoon: function () {
        var self = this;
        clearTimeout(this.waitingTimer);
        this.waitingTimer = setTimeout(function () { self.loadWaiting(); }, 300);
      },
      loadWaiting: async function () {
        var id = this.selected;
        try {
          var response = await fetch(API + "/queues/" + id + "/waiting", { headers: { Accept: "application/json" }, credentials: "same-origin" });
          if (!response.ok || this.selected !== id) return;
          var body = await response.json();
          this.waiting = (Array.isArray(body) ? body : body.items || []).map(function (t) {
            return Object.assign({ newPriority: t.priority, moveTo: "" }, t);
          });
          this.waitingLoaded = true;
          this.waitingAt = Date.now();
        } catch (e) { /* the next refresh tries again */ }
      },
      selectedQueue: function () {
        var id = this.selected;
        return this.queues.find(function (q) { return q.id === id; }) || null;
      },
      waitingTitle: function () {
        var queue = this.selectedQueue();
        return queue ? fill(texts.waiting_in, { queue: queue.name }) : "";
      },
      otherQueues: function () {
        var id = this.selected;
        return this.queues.filter(function (q) { return q.id !== id; });
      },

      // --- actions ---
      post: async function (url, body, done) {
        if (this.busy) return;
        this.busy = true;
        try {
          var result = await window.plSend("POST", url, body);
          if (!result.ok) { window.plToast(result.body.message || texts.error, "error"); return; }
          window.plToast(done || texts.done, "ok");
          this.refreshSoon();
          if (this.selected !== null) this.loadWaitingSoon();
        } finally {
          this.busy = false;
        }
      },
      forceReady: function (agent) { return this.post(API + "/agents/" + agent.user_id + "/ready", undefined, fill(texts.forced_ready, { name: agent.name })); },
      forceNotReady: function (agent) {
        return this.post(API + "/agents/" + agent.user_id + "/not-ready", undefined, fill(texts.forced_not_ready, { name: agent.name }));
      },
      forceLogout: function (agent) {
        if (!window.confirm(fill(texts.confirm_logout, { name: agent.name }))) return;
        return this.post(API + "/agents/" + agent.user_id + "/logout", undefined, fill(texts.forced_logout, { name: agent.name }));
      },
      move: function (task) {
        if (!task.moveTo) return;
        return this.post(API + "/tasks/" + task.id + "/move", { queue_id: Number(task.moveTo) }, texts.moved);
      },
      setPriority: function (task) {
        return this.post(API + "/tasks/" + task.id + "/priority", { priority: Number(task.newPriority) }, texts.priority_set);
      },

      // --- big screen ---
      toggleBig: function () {
        this.big = !this.big;
        document.body.classList.toggle("rt-big", this.big);
        var url = new URL(location.href);
        if (this.big) url.searchParams.set("big", "1"); else url.searchParams.delete("big");
        history.replaceState(null, "", url.pathname + url.search);
        if (this.big && document.documentElement.requestFullscreen) {
          document.documentElement.requestFullscreen().then(function () {}, function () { /* refused: stays in the window */ });
        } else if (!this.big && document.fullscreenElement) {
          document.exitFullscreen();
        }
      },

      // --- what the tiles show ---
      longestWait: function (queue) {
        if (!queue.waiting && !queue.ringing) return "—";
        var extra = (this.now - (this.receivedAt[queue.id] || this.now)) / 1000;
        return duration((queue.longest_wait_s || 0) + extra);
      },
      today: function (queue) { return queue.today || {}; },
      serviceLevel: function (queue) { return percent(this.today(queue).service_level); },
      target: function (queue) { return fill(texts.target, { target: percent(queue.sl_target), seconds: queue.sl_seconds }); },
      slClass: function (queue) {
        var sl = this.today(queue).service_level;
        if (sl === null || sl === undefined) return "";
        return sl < queue.sl_target ? "rt-sl-low" : "rt-sl-ok";
      },
      asa: function (queue) {
        var asa = this.today(queue).asa_s;
        return asa === null || asa === undefined ? "—" : fill(texts.seconds, { seconds: Math.round(asa) });
      },
      count: function (queue, key) { var v = this.today(queue)[key]; return v === undefined || v === null ? 0 : v; },
      agentCounts: function (queue) {
        var agents = queue.agents || {};
        return ["ready", "offered", "busy", "wrap_up", "not_ready"].map(function (status) {
          return { status: status, count: agents[status] || 0, label: texts.status[status] };
        });
      },
      alertTexts: function (queue) {
        return (queue.alerts || []).map(function (alert) {
          if (typeof alert === "string") return texts.alerts[alert] || alert;
          return texts.alerts[alert.code] || alert.message || alert.code;
        });
      },
      statusText: function (status) { return texts.status[status] || status; },
      reasonText: function (reason) { return reason ? (texts.reason[reason] || reason) : ""; },
      channelText: function (channel) { return texts.channel[channel] || channel; },
      inStatus: function (agent) { return agent.since ? duration((this.now - Date.parse(agent.since)) / 1000) : ""; },
      taskCount: function (agent) { return Array.isArray(agent.tasks) ? agent.tasks.length : (agent.tasks || 0); },
      waited: function (task) {
        if (task.entered_at) return duration((this.now - Date.parse(task.entered_at)) / 1000);
        return duration((task.wait_s || 0) + (this.now - this.waitingAt) / 1000);
      },
      callerText: callerText,
      sortedAgents: function () {
        var order = { offered: 0, busy: 1, wrap_up: 2, ready: 3, not_ready: 4, offline: 5 };
        return this.agents.slice().sort(function (a, b) {
          return (order[a.status] - order[b.status]) || String(a.name).localeCompare(String(b.name));
        });
      },
    };
  };
})();
