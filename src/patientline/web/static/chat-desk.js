/* The chat desk: the agent's chats (several at once, as routing allows) and, for supervisors, every
   live chat to watch and take over. Live updates come as chat.activity / chat.typing on the page's
   event stream; the desk then reads what is new (`after` the last seq shown). Text is only ever set
   with textContent. */
(function () {
  "use strict";
  var root = document.querySelector("[data-testid=chat-desk]");
  if (!root) return;
  var texts = JSON.parse(document.getElementById("cd-texts").textContent);
  var csrf = document.body.dataset.csrf || "";
  var $ = function (selector) { return root.querySelector(selector); };
  var supervise = root.dataset.supervise === "yes";
  var open = { id: null, seq: 0, shown: {}, summary: null };
  var mineIds = {};
  var typingTimer = null, lastTyping = 0;

  function api(path, options) {
    options = options || {};
    var headers = { "X-CSRF-Token": csrf };
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    return fetch("/api/chat-desk" + path, {
      method: options.method || (options.json !== undefined ? "POST" : "GET"), headers: headers, credentials: "same-origin",
      body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
    }).then(function (response) {
      if (response.status === 204) return null;
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.message || response.statusText);
        return body;
      });
    });
  }
  function post(path, body) { return api(path, { json: body === undefined ? {} : body }); }
  function fail(error) { $("[data-error]").textContent = texts.failed + " " + error.message; }
  function newId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function node(tag, className, text) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  // ---- the lists ---------------------------------------------------------------------------------------

  function label(chat) {
    var who = chat.phone_masked || texts.anonymous;
    var at = new Date(chat.last_activity_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return at + " " + who + " · " + (texts.states[chat.state] || chat.state);
  }

  function fillList(list, chats, empty) {
    if (!list) return;
    list.innerHTML = "";
    if (!chats.length) { list.appendChild(node("li", "empty", empty)); return; }
    chats.forEach(function (chat) {
      var item = node("li");
      var button = node("button", "", label(chat));
      button.type = "button";
      button.dataset.chat = chat.conversation;
      button.setAttribute("aria-current", String(chat.conversation === open.id));
      if (chat.emergency) button.prepend(node("span", "cd-alarm", "⚠ " + texts.emergency + " "));
      button.addEventListener("click", function () { show(chat.conversation); });
      item.appendChild(button);
      list.appendChild(item);
    });
  }

  function refresh() {
    return api("").then(function (desk) {
      mineIds = {};
      desk.mine.forEach(function (chat) { mineIds[chat.conversation] = true; });
      fillList($("[data-mine]"), desk.mine, texts.no_chats);
      if (desk.live) fillList($("[data-live]"), desk.live, texts.no_live);
      if (!open.id && desk.mine.length) show(desk.mine[0].conversation);
    }).catch(fail);
  }

  // ---- one chat ----------------------------------------------------------------------------------------

  function show(id) {
    if (open.id !== id) {
      open = { id: id, seq: 0, shown: {}, summary: null };
      $("[data-log]").innerHTML = "";
      $("[data-suggestions]").innerHTML = "";
      history.replaceState(null, "", "/chat/desk?chat=" + id);
    }
    root.querySelectorAll("[data-chat]").forEach(function (b) { b.setAttribute("aria-current", String(b.dataset.chat === id)); });
    $("[data-chat-view]").hidden = false;
    $("[data-side]").hidden = false;
    $("[data-empty]").hidden = true;
    return load();
  }

  function load() {
    var id = open.id;
    return api("/" + id + "?after=" + open.seq).then(function (chat) {
      if (id !== open.id) return;
      open.summary = chat;
      header(chat);
      var patientWrote = false;
      chat.messages.forEach(function (message) { patientWrote = append(message) || patientWrote; });
      if (patientWrote || !$("[data-suggestions]").children.length) suggest();
      var mine = chat.state === "agent" && mineIds[id];
      if (mine && chat.agent_read_seq < open.seq) post("/" + id + "/read", { seq: open.seq }).catch(function () {});
    }).catch(fail);
  }

  function header(chat) {
    $("[data-title]").textContent = chat.phone_masked || texts.anonymous;
    $("[data-who]").textContent = (texts.states[chat.state] || chat.state) + (chat.emergency ? " · ⚠ " + texts.emergency : "");
    setLink($("[data-card]"), chat.patient_id ? "/workbench/patients/" + chat.patient_id + (chat.contact_id ? "?contact=" + chat.contact_id : "") : null);
    setLink($("[data-contact]"), chat.contact_id ? "/contacts/" + chat.contact_id : null);
    setLink($("[data-order]"), chat.contact_id ? "/workorders/new?contact_id=" + chat.contact_id : null);
    var mine = chat.state === "agent" && mineIds[chat.conversation];
    $("[data-person-actions]").hidden = !mine;
    var watch = $("[data-watch-actions]");
    if (watch) watch.hidden = mine || chat.state === "closed" || !supervise;
  }

  function setLink(anchor, href) {
    if (!anchor) return;
    anchor.hidden = !href;
    if (href) anchor.href = href;
  }

  function append(message) {
    if (open.shown[message.seq]) return false;
    open.shown[message.seq] = true;
    open.seq = Math.max(open.seq, message.seq);
    var item = node("li", "cd-" + message.sender + " cd-kind-" + message.kind);
    item.dataset.seq = message.seq;
    var who = message.sender === "agent" ? (message.data.name || "") : (texts[message.sender] || "");
    item.appendChild(node("small", "", who));
    if (message.kind === "image") {
      var picture = node("img");
      picture.src = message.data.url; picture.alt = texts.picture;
      item.appendChild(picture);
    } else if (message.kind === "identified") {
      item.appendChild(node("p", "", texts.identified + " " + (message.data.phone_masked || "")));
    } else {
      item.appendChild(node("p", "", message.text));
    }
    if (message.kind === "triage") {
      (message.data.suggestions || []).forEach(function (s) { item.appendChild(node("p", "", "· " + s.department + (s.reason ? "（" + s.reason + "）" : ""))); });
    }
    var log = $("[data-log]");
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
    if (message.sender === "patient") $("[data-typing]").hidden = true;
    return message.sender === "patient";
  }

  function suggest() {
    var id = open.id;
    api("/" + id + "/suggestions").then(function (found) {
      if (id !== open.id) return;
      var list = $("[data-suggestions]");
      list.innerHTML = "";
      if (!found.hits.length) { list.appendChild(node("li", "empty", texts.no_suggestions)); return; }
      found.hits.forEach(function (hit) {
        var item = node("li");
        var button = node("button", "", hit.question);
        button.type = "button";
        button.addEventListener("click", function () { insert(hit.spoken || hit.question); });
        item.appendChild(button);
        list.appendChild(item);
      });
    }).catch(function () {});
  }

  function insert(text) {
    var input = $("#cd-text");
    input.value = (input.value ? input.value + "\n" : "") + text;
    input.focus();
  }

  // ---- actions -----------------------------------------------------------------------------------------

  function act(path, body, done) {
    $("[data-error]").textContent = "";
    return post("/" + open.id + path, body).then(function (result) { if (done) done(result); return refresh().then(load); }).catch(fail);
  }

  $("[data-reply]").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("#cd-text");
    var text = input.value.trim();
    if (!text || !open.id) return;
    input.value = "";
    act("/messages", { client_id: newId(), text: text }).then(function () { input.focus(); });
  });
  $("#cd-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); $("[data-reply]").requestSubmit(); }
  });
  $("#cd-text").addEventListener("input", function () {
    if (!open.id || Date.now() - lastTyping < 3000) return;
    lastTyping = Date.now();
    post("/" + open.id + "/typing").catch(function () {});
  });
  $("[data-script]").addEventListener("change", function (event) {
    if (!event.target.value) return;
    insert(event.target.value.replace("{agent}", root.dataset.persona));
    event.target.value = "";
  });
  $("[data-hand-back]").addEventListener("click", function () { act("/hand-back"); });
  $("[data-transfer]").addEventListener("click", function () { act("/transfer", { queue_id: Number($("[data-queue]").value) }); });
  $("[data-end]").addEventListener("click", function () {
    var code = $("[data-disposition]").value;
    act("/end", { wrap_up: $("[data-wrap-up]").checked, disposition_ids: code ? [Number(code)] : [] });
  });
  var takeOver = $("[data-take-over]");
  if (takeOver) takeOver.addEventListener("click", function () { act("/take-over"); });

  // ---- live ----------------------------------------------------------------------------------------------

  function listen(source) {
    source.addEventListener("chat.activity", function (message) {
      var payload = JSON.parse(message.data).payload;
      if (payload.conversation === open.id) load();
      refreshSoon();
    });
    source.addEventListener("chat.typing", function (message) {
      var payload = JSON.parse(message.data).payload;
      if (payload.conversation !== open.id || payload.side !== "patient") return;
      var line = $("[data-typing]");
      line.textContent = texts.typing; line.hidden = false;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(function () { line.hidden = true; }, 4000);
    });
  }
  var refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(function () { refreshTimer = null; refresh(); }, 500);
  }
  function attach(tries) {
    if (window.plEvents) return listen(window.plEvents);
    if (tries > 20) return listen(new EventSource("/api/events"));
    setTimeout(function () { attach(tries + 1); }, 150);
  }

  attach(0);
  setInterval(refresh, 15000);
  var wanted = new URLSearchParams(location.search).get("chat");
  refresh().then(function () { if (wanted) show(wanted); });
})();
