/* The supervision list (督办): live countdowns coloured by urgency, selection and bulk reminders,
   extension decisions, a refresh on every workorders.changed event, the wall display. */
(function () {
  "use strict";

  var offset = 0; // the server's clock minus this browser's, so countdowns follow the server

  function root() { return document.querySelector(".wo-supervision"); }
  var fill = window.plText.fill, pad = window.plText.pad;

  function clockText(box, seconds) {
    var rest = Math.abs(seconds);
    var days = Math.floor(rest / 86400);
    rest -= days * 86400;
    var text = pad(Math.floor(rest / 3600)) + ":" + pad(Math.floor((rest % 3600) / 60)) + ":" + pad(rest % 60);
    return days ? fill(box.dataset.days, { days: days, time: text }) : text;
  }

  function syncClock() {
    var holder = document.querySelector("#board [data-server-now]");
    if (holder) offset = Date.parse(holder.dataset.serverNow) - Date.now();
  }

  // Every second: the time left (or overdue) and the colour: red overdue, amber past the warning point.
  function tick() {
    var box = root();
    if (!box) return;
    var now = Date.now() + offset;
    box.querySelectorAll(".countdown[data-due]").forEach(function (el) {
      var due = Date.parse(el.dataset.due);
      var warn = el.dataset.warn ? Date.parse(el.dataset.warn) : null;
      var seconds = Math.trunc((due - now) / 1000);
      var overdue = due < now;
      var urgency = overdue ? "overdue" : (warn !== null && now >= warn ? "soon" : "ok");
      el.textContent = fill(overdue ? box.dataset.overdue : box.dataset.left, { time: clockText(box, seconds) });
      if (el.dataset.urgency !== urgency) {
        el.classList.remove("urg-" + el.dataset.urgency);
        el.classList.add("urg-" + urgency);
        el.dataset.urgency = urgency;
        var row = el.closest("tr");
        if (row) row.className = "row-" + urgency;
      }
    });
  }

  window.supervisionBoard = function () {
    var pendingRefresh = null;
    return {
      selected: [],
      live: false,
      refreshing: false,
      wall: false,

      init: function () {
        var self = this;
        this.wall = localStorage.getItem("pl-wo-wall") === "1";
        document.body.classList.toggle("wo-wall", this.wall);
        syncClock();
        tick();
        setInterval(tick, 1000);
        setInterval(function () { self.refresh(); }, 60000); // also when the event stream is down
        document.body.addEventListener("htmx:afterSwap", function (event) {
          if (event.detail.target.id !== "board") return;
          syncClock();
          self.prune();
          tick();
        });
        var hook = function () {
          var source = window.plEvents;
          if (!source) return;
          self.live = source.readyState === 1;
          source.addEventListener("open", function () { self.live = true; });
          source.addEventListener("error", function () { self.live = false; });
          source.addEventListener("workorders.changed", function () { self.refreshSoon(1500); });
        };
        if (window.plEvents) hook(); else document.addEventListener("alpine:initialized", hook, { once: true });
      },

      // Several changes in a row make one refresh; a note being typed is never wiped out.
      refreshSoon: function (delay) {
        var self = this;
        clearTimeout(pendingRefresh);
        pendingRefresh = setTimeout(function () { self.refresh(); }, delay);
      },

      refresh: function () {
        var board = document.getElementById("board");
        if (!board || !window.htmx) return;
        var focused = document.activeElement;
        if (focused && board.contains(focused) && focused.tagName === "INPUT" && focused.type === "text" && focused.value) {
          this.refreshSoon(5000);
          return;
        }
        var note = document.getElementById("reminder-note");
        var kept = note ? note.value : "";
        var self = this;
        board.setAttribute("aria-busy", "true");
        this.refreshing = true;
        window.htmx.ajax("GET", location.pathname + location.search, { target: "#board", swap: "innerHTML" }).finally(function () {
          board.setAttribute("aria-busy", "false");
          self.refreshing = false;
          var again = document.getElementById("reminder-note");
          if (again && kept) again.value = kept;
        });
      },

      prune: function () {
        var present = Array.from(document.querySelectorAll("#board tbody input[type=checkbox]")).map(function (el) { return el.value; });
        this.selected = this.selected.filter(function (id) { return present.indexOf(id) >= 0; });
      },

      selectAll: function (on) {
        this.selected = on ? Array.from(document.querySelectorAll("#board tbody input[type=checkbox]")).map(function (el) { return el.value; }) : [];
      },

      remind: async function (form) {
        var box = root();
        if (!this.selected.length) { window.plToast(box.dataset.noneSelected, "error"); return; }
        var note = form.querySelector("[name=note]");
        var button = form.querySelector("[type=submit]");
        button.disabled = true;
        try {
          var result = await window.plSend("POST", "/api/workorders/reminders", {
            order_ids: this.selected.map(Number), note: note.value });
          if (!result.ok) { window.plToast(result.body.message || "Error", "error"); return; }
          window.plToast(fill(box.dataset.reminded, { count: result.body.reminded }), "ok");
          note.value = "";
          this.selected = [];
        } finally {
          button.disabled = this.selected.length === 0;
        }
      },

      decide: async function (event, extensionId) {
        var form = event.target;
        var approve = !event.submitter || event.submitter.value === "1";
        var result = await window.plSend("POST", "/api/workorders/extensions/" + extensionId + "/decision", {
          approve: approve, note: form.querySelector("[name=note]").value });
        if (!result.ok) { window.plToast(result.body.message || "Error", "error"); return; }
        window.plToast(root().dataset.decided, "ok");
        form.querySelector("[name=note]").value = "";
        this.refresh();
      },

      toggleWall: function () {
        this.wall = !this.wall;
        localStorage.setItem("pl-wo-wall", this.wall ? "1" : "0");
        document.body.classList.toggle("wo-wall", this.wall);
      },
    };
  };
})();
