/* The patient's web chat. The conversation id and secret live in this browser's localStorage; the
   secret travels only in the X-Chat-Secret header, so the live stream is read with fetch, not
   EventSource. Every message has a client id: one not yet acknowledged stays in an outbox (also in
   localStorage) and is sent again, with the same id, after a reconnect or a reload; the server keeps one
   copy. Messages are shown once, in seq order, whatever the stream and the resends deliver. */
(function () {
  "use strict";
  var STORE = "pl-chat";
  var SILENCE_MS = 20000;  // a stream silent this long is dead: reconnect
  var RESEND_MS = 5000;  // messages not acknowledged are sent again this often
  var texts = JSON.parse(document.getElementById("pc-texts").textContent);
  var locale = document.body.dataset.locale || "zh_CN";
  var $ = function (selector) { return document.querySelector(selector); };
  var log = $("[data-log]");
  var state = { id: null, secret: null, seq: 0, shown: {}, outbox: [], agentRead: 0, chatState: "bot", rated: false };
  var stream = null;
  var typingTimer = null, lastTypingSent = 0, readSent = 0;
  var sending = {};  // client ids posted and not yet answered

  function fill(text, values) {
    return text.replace(/\{(\w+)\}/g, function (_, key) { return values[key] === undefined ? "" : values[key]; });
  }
  function newId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function save() {
    localStorage.setItem(STORE, JSON.stringify({ id: state.id, secret: state.secret, outbox: state.outbox }));
  }
  function load() {
    try { return JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { return null; }
  }
  function status(text) { $("[data-status]").textContent = text; }
  function showError(text, where) { (where || $("[data-error]")).textContent = text || ""; }

  function api(path, options) {
    options = options || {};
    var headers = { "X-Chat-Secret": state.secret || "" };
    if (options.json !== undefined) headers["Content-Type"] = "application/json";
    return fetch("/api/chat" + path, {
      method: options.method || "POST", headers: headers,
      body: options.form || (options.json !== undefined ? JSON.stringify(options.json) : undefined),
    }).then(function (response) {
      if (response.status === 204) return null;
      return response.json().then(function (body) {
        if (!response.ok) { var error = new Error(body.message || texts.failed); error.status = response.status; error.body = body; throw error; }
        return body;
      });
    });
  }

  // ---- the conversation -------------------------------------------------------------------------------

  function start() {
    return fetch("/api/chat/sessions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ locale: locale }) })
      .then(function (response) { return response.json().then(function (body) { if (!response.ok) throw new Error(body.message); return body; }); })
      .then(function (body) { state.id = body.conversation; state.secret = body.secret; state.outbox = []; save(); });
  }

  function begin() {
    var stored = load();
    var ready = stored && stored.id && stored.secret
      ? Promise.resolve(Object.assign(state, { id: stored.id, secret: stored.secret, outbox: stored.outbox || [] }))
      : start();
    ready.then(connect).catch(function (error) { showError(error.message); });
  }

  function restart() {
    localStorage.removeItem(STORE);
    if (stream) stream.abort();
    log.innerHTML = "";
    Object.assign(state, { id: null, secret: null, seq: 0, shown: {}, outbox: [], agentRead: 0, chatState: "bot", rated: false });
    $("[data-rating]").hidden = true;
    $("[data-compose]").hidden = false;
    begin();
  }

  // ---- the live stream: fetch + server-sent events, resumed after the last seq shown ----------------

  function connect() {
    var controller = new AbortController();
    stream = controller;
    status(texts.reconnecting);
    fetch("/api/chat/" + state.id + "/stream?after=" + state.seq, { headers: { "X-Chat-Secret": state.secret }, signal: controller.signal })
      .then(function (response) {
        if (response.status === 403) { restart(); throw new Error("gone"); }
        if (!response.ok || !response.body) throw new Error("stream");
        status(texts.connected);
        flushOutbox();
        return read(response.body.getReader(), new TextDecoder(), "");
      })
      .catch(function () { /* reconnect below */ })
      .then(function () { if (stream === controller) setTimeout(connect, 1000); });
  }

  function read(reader, decoder, buffer) {
    var controller = stream;
    var watchdog = setTimeout(function () { controller.abort(); }, SILENCE_MS);  // the server speaks every 15 s
    return reader.read().then(function (chunk) {
      clearTimeout(watchdog);
      if (chunk.done) return;
      buffer += decoder.decode(chunk.value, { stream: true });
      var frames = buffer.split("\n\n");
      buffer = frames.pop();
      frames.forEach(frame);
      return read(reader, decoder, buffer);
    });
  }

  function frame(raw) {
    var event = "message", data = "";
    raw.split("\n").forEach(function (line) {
      if (line.indexOf("event: ") === 0) event = line.slice(7);
      else if (line.indexOf("data: ") === 0) data += line.slice(6);
    });
    if (!data) return;
    var body = JSON.parse(data);
    if (event === "message") show(body);
    else if (event === "state") changed(body);
    else if (event === "typing" && body.side === "agent") typing();
  }

  function changed(body) {
    state.chatState = body.state;
    state.agentRead = body.agent_read_seq;
    state.rated = body.rating !== null;
    markRead();
    var closed = body.state === "closed";
    $("[data-compose]").hidden = closed;
    $("[data-rating]").hidden = !closed || state.rated;
    if (closed && !$(".pc-new")) {
      var again = document.createElement("button");
      again.type = "button"; again.className = "pc-new"; again.textContent = texts.new_chat;
      again.addEventListener("click", restart);
      log.parentNode.appendChild(again);
    }
  }

  // ---- showing messages ---------------------------------------------------------------------------------

  function show(message) {
    if (state.shown[message.seq]) return;
    state.shown[message.seq] = true;
    while (state.shown[state.seq + 1]) state.seq += 1;  // resume after the last seq with none missing before it
    var pending = message.client_id && log.querySelector('[data-client-id="' + message.client_id + '"]');
    if (pending) pending.remove();
    var item = bubble(message);
    var later = Array.prototype.find.call(log.querySelectorAll("[data-seq]"), function (node) { return Number(node.dataset.seq) > message.seq; });
    log.insertBefore(item, later || log.querySelector(".pc-pending"));
    state.outbox = state.outbox.filter(function (m) { return m.client_id !== message.client_id; });
    save();
    if (message.sender === "agent") $("[data-typing]").hidden = true;
    item.scrollIntoView({ block: "end" });
    markRead();
  }

  function bubble(message) {
    var item = document.createElement("li");
    item.className = "pc-msg pc-" + message.sender + " pc-kind-" + message.kind;
    if (message.seq) item.dataset.seq = message.seq;
    if (message.client_id) item.dataset.clientId = message.client_id;
    if (message.sender === "agent" && message.data && message.data.name) item.appendChild(line("pc-who", message.data.name));
    if (message.kind === "image") {
      var picture = document.createElement("img");
      picture.src = message.data.url; picture.alt = texts.picture; picture.className = "pc-picture";
      item.appendChild(picture);
    } else if (message.text) {
      item.appendChild(line("pc-text", message.text));
    }
    if (message.kind === "answer" && message.data.url) item.appendChild(link(message.data.url + (locale === "en" ? "?lang=en" : ""), texts.more));
    if (message.kind === "choices") item.appendChild(choices(message.data.options || []));
    if (message.kind === "triage") item.appendChild(triage(message.data.suggestions || []));
    return item;
  }

  function line(className, text) {
    var node = document.createElement("p");
    node.className = className; node.textContent = text;
    return node;
  }
  function link(href, text) {
    var anchor = document.createElement("a");
    anchor.href = href; anchor.textContent = text; anchor.target = "_blank"; anchor.rel = "noopener";
    return anchor;
  }

  function choices(options) {
    var list = document.createElement("div");
    list.className = "pc-choices";
    options.forEach(function (option) {
      var button = document.createElement("button");
      button.type = "button"; button.textContent = option.label;
      button.addEventListener("click", function () { send(option.label, option.choice); });
      list.appendChild(button);
    });
    return list;
  }

  function triage(suggestions) {
    var list = document.createElement("ol");
    list.className = "pc-triage";
    suggestions.forEach(function (s) {
      var item = document.createElement("li");
      item.appendChild(line("pc-dept", s.department + (s.reason ? "（" + s.reason + "）" : "")));
      var where = s.clinics.length ? s.clinics.map(function (c) { return c.name + (c.location ? " " + c.location : ""); }).join("；") : texts.no_clinic;
      item.appendChild(line("pc-small", texts.clinics + " " + where));
      list.appendChild(item);
    });
    return list;
  }

  function markRead() {
    log.querySelectorAll(".pc-read").forEach(function (node) { node.remove(); });
    var mine = log.querySelectorAll(".pc-patient[data-seq]");
    var last = mine[mine.length - 1];
    if (last && Number(last.dataset.seq) <= state.agentRead) last.appendChild(line("pc-read", texts.read));
    if (document.visibilityState === "visible" && state.seq > readSent && state.id) {
      readSent = state.seq;
      api("/" + state.id + "/read", { json: { seq: state.seq } }).catch(function () { readSent = 0; });
    }
  }

  function typing() {
    var node = $("[data-typing]");
    node.textContent = texts.typing; node.hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(function () { node.hidden = true; }, 4000);
  }

  // ---- sending ------------------------------------------------------------------------------------------

  function send(text, choice) {
    var message = { client_id: newId(), text: text };
    if (choice) message.choice = choice;
    state.outbox.push(message);
    save();
    pendingBubble(message).scrollIntoView({ block: "end" });
    post(message);
  }

  function pendingBubble(message) {
    var item = bubble({ client_id: message.client_id, sender: "patient", kind: "text", text: message.text, data: {} });
    item.classList.add("pc-pending");
    item.appendChild(line("pc-small", texts.sending));
    log.appendChild(item);
    return item;
  }

  function post(message) {
    if (sending[message.client_id]) return;
    sending[message.client_id] = true;
    showError("");
    return api("/" + state.id + "/messages", { json: message })
      .finally(function () { delete sending[message.client_id]; })
      .then(function (body) { show(body.message); })
      .catch(function (error) {
        if (error.status && error.status !== 429 && error.status < 500) {  // refused: it will never go
          state.outbox = state.outbox.filter(function (m) { return m.client_id !== message.client_id; });
          save();
          var pending = log.querySelector('[data-client-id="' + message.client_id + '"]');
          if (pending) pending.remove();
        } else {
          var waiting = log.querySelector('[data-client-id="' + message.client_id + '"] .pc-small');
          if (waiting) waiting.textContent = texts.not_sent;
        }
        showError(error.message);
      });
  }

  function flushOutbox() {
    state.outbox.forEach(function (message) {
      if (!log.querySelector('[data-client-id="' + message.client_id + '"]')) pendingBubble(message);
      post(message);
    });
  }

  $("[data-send-form]").addEventListener("submit", function (event) {
    event.preventDefault();
    var input = $("#pc-text");
    var text = input.value.trim();
    if (!text || !state.id) return;
    input.value = "";
    send(text);
  });
  $("#pc-text").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); $("[data-send-form]").requestSubmit(); }
  });
  $("#pc-text").addEventListener("input", function () {
    var now = Date.now();
    if (state.chatState === "agent" && now - lastTypingSent > 3000) {
      lastTypingSent = now;
      api("/" + state.id + "/typing").catch(function () {});
    }
  });
  document.addEventListener("visibilitychange", markRead);
  window.addEventListener("online", function () { if (stream) stream.abort(); });  // reconnects, then resends
  setInterval(function () { if (state.id && state.outbox.length && navigator.onLine !== false) flushOutbox(); }, RESEND_MS);

  $("[data-image]").addEventListener("change", function (event) {
    var file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    if (file.size > 2 * 1024 * 1024) return showError(texts.too_big);
    if (!/^image\/(png|jpeg|gif|webp)$/.test(file.type)) return showError(texts.not_picture);
    var form = new FormData();
    form.append("client_id", newId());
    form.append("file", file);
    api("/" + state.id + "/images", { form: form }).then(function (body) { show(body.message); }).catch(function (error) { showError(error.message); });
  });

  $("[data-human]").addEventListener("click", function () {
    api("/" + state.id + "/human").catch(function (error) { showError(error.message); });
  });
  $("[data-end]").addEventListener("click", function () {
    api("/" + state.id + "/end").then(changed).catch(function (error) { showError(error.message); });
  });

  // ---- identification and rating -------------------------------------------------------------------------

  $("[data-show-identify]").addEventListener("click", function () {
    var panel = $("[data-identify]");
    panel.hidden = !panel.hidden;
    if (!panel.hidden) $("#pc-phone").focus();
  });
  $("[data-phone-form]").addEventListener("submit", function (event) {
    event.preventDefault();
    var where = $("[data-identify-error]");
    api("/" + state.id + "/code", { json: { phone: $("#pc-phone").value } })
      .then(function (body) { showError(fill(texts.code_sent, { phone: body.phone_masked }), where); $("[data-code-form]").hidden = false; $("#pc-code").focus(); })
      .catch(function (error) { showError(error.message, where); });
  });
  $("[data-code-form]").addEventListener("submit", function (event) {
    event.preventDefault();
    var where = $("[data-identify-error]");
    api("/" + state.id + "/verify", { json: { code: $("#pc-code").value } })
      .then(function () { $("[data-identify]").hidden = true; showError("", where); })
      .catch(function (error) { showError(error.message, where); });
  });
  $("[data-rating-form]").addEventListener("submit", function (event) {
    event.preventDefault();
    var chosen = event.target.querySelector("input[name=rating]:checked");
    if (!chosen) return;
    api("/" + state.id + "/rating", { json: { rating: Number(chosen.value), comment: $("#pc-comment").value } })
      .then(function () { $("[data-rating]").hidden = true; log.appendChild(line("pc-notice", texts.rated)); })
      .catch(function (error) { showError(error.message); });
  });

  begin();
})();
