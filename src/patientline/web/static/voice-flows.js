/* IVR flows: the flow editor: the draft as a tree of node cards
   from the start node (the nodes a node leads to indented under it, a node reached again shown as a link
   to it, nodes no caller reaches listed at the end). The editor saves the draft with its version,
   publishes it, puts an earlier version back live, and shows the problems the API finds on the card and
   field they name. Text is set with textContent only; the page's texts come from #vf-texts. */
(function () {
  "use strict";

  var root = document.getElementById("vf-editor");
  if (!root) return;

  var DATA = JSON.parse(document.getElementById("vf-data").textContent);
  var T = JSON.parse(document.getElementById("vf-texts").textContent);
  var API = "/api/voice/flows/" + DATA.flow.id;
  var KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0", "*", "#"];
  var ID_PATTERN = /^[a-z][a-z0-9_]{0,31}$/;
  var SEQUENCE = ["play", "announcement", "knowledge"];
  var WITH_PROMPT = ["play", "announcement", "menu", "collect", "voicemail", "callback"];
  var NEW_OPTION = "new:";

  var state = {
    flow: DATA.flow,
    settings: { name: DATA.flow.name, number: DATA.flow.number || "", description: DATA.flow.description || "" },
    draft: JSON.parse(JSON.stringify(DATA.flow.draft)),
    problems: DATA.flow.problems || [],  // what the API found in the saved draft
    errors: [],  // what stopped the last save: input the API refused, branches not chosen
    versions: DATA.versions,
    saved: "",
    busy: false,
  };

  // --- small helpers ------------------------------------------------------------------------------

  function fmt(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (whole, key) {
      return values[key] === undefined ? whole : String(values[key]);
    });
  }

  function el(tag, props, children) {
    var node = document.createElement(tag);
    var value;
    Object.keys(props || {}).forEach(function (key) {
      var given = props[key];
      if (given === null || given === undefined || given === false) return;
      if (key === "text") node.textContent = given;
      else if (key === "class") node.className = given;
      else if (key === "value") value = given;
      else if (key === "checked") node.checked = true;
      else if (key.indexOf("on") === 0) node.addEventListener(key.slice(2), given);
      else node.setAttribute(key, given === true ? "" : given);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    if (value !== undefined) node.value = value;
    return node;
  }

  function covers(prefix, field) { return field === prefix || field.indexOf(prefix + ".") === 0; }
  function controlId(nodeId, field) {
    return "n-" + nodeId + "-" + field.replace(/\*/g, "star").replace(/#/g, "hash").replace(/[^A-Za-z0-9_-]/g, "_");
  }
  function byId() {
    var found = Object.create(null);
    state.draft.nodes.forEach(function (node) { if (!(node.id in found)) found[node.id] = node; });
    return found;
  }
  function snapshot() { return JSON.stringify({ settings: state.settings, draft: state.draft }); }
  function isDirty() { return snapshot() !== state.saved; }
  function kindLabel(kind) { return T.kinds[kind] || kind; }
  function nodeLabel(id, node) { return id + " · " + kindLabel(node.type); }
  // the keys of a menu in the order of a phone's keypad (1 to 9, 0, * and #)
  function keysOf(choices) {
    return Object.keys(choices || {}).sort(function (a, b) { return KEYS.indexOf(a) - KEYS.indexOf(b); });
  }

  // --- where each kind of node leads ----------------------------------------------------------------

  function branchesOf(node) {
    if (node.type === "menu") {
      return keysOf(node.choices).map(function (key) {
        return { field: "choices." + key, label: fmt(T.branches.key, { key: key }), target: node.choices[key] };
      }).concat([{ field: "otherwise", label: T.branches.menu_otherwise, target: node.otherwise }]);
    }
    if (node.type === "collect") {
      return [{ field: "next", label: T.branches.collect_next, target: node.next },
              { field: "otherwise", label: T.branches.collect_otherwise, target: node.otherwise }];
    }
    if (node.type === "hours") {
      return [{ field: "open", label: T.branches.open, target: node.open },
              { field: "closed", label: T.branches.closed, target: node.closed }];
    }
    if (SEQUENCE.indexOf(node.type) >= 0) return [{ field: "next", label: T.branches.next, target: node.next }];
    return [];
  }

  function setBranch(node, field, target) {
    if (field.indexOf("choices.") === 0) node.choices[field.slice(8)] = target;
    else node[field] = target;
  }

  function freeId(kind) {
    var taken = byId();
    for (var n = 1; ; n++) { if (!((kind + "_" + n) in taken)) return kind + "_" + n; }
  }

  function newNode(kind) {
    var node = { type: kind, id: freeId(kind) };
    if (WITH_PROMPT.indexOf(kind) >= 0) node.prompt = { text: "" };
    if (SEQUENCE.indexOf(kind) >= 0) node.next = "";
    if (kind === "menu") { node.choices = { "1": "" }; node.otherwise = ""; }
    if (kind === "collect") { node.kind = "digits"; node.next = ""; node.otherwise = ""; }
    if (kind === "hours") { node.hours = "08:00-17:30"; node.open = ""; node.closed = ""; }
    var queue = DATA.queues.filter(function (q) { return q.active; })[0];
    if (kind === "callback" && queue) node.queue_id = queue.id;
    if (kind === "transfer") { if (queue) node.queue_id = queue.id; else node.number = ""; }
    return node;
  }

  // --- problems: those of the saved draft and those that stopped the last save ------------------------

  function allProblems() { return state.errors.concat(state.problems); }
  function problemsOf(nodeId) { return allProblems().filter(function (p) { return p.node === nodeId; }); }
  function messagesFor(nodeId, field) {
    return problemsOf(nodeId).filter(function (p) { return covers(field, p.field || ""); })
      .map(function (p) { return p.message; });
  }

  // An API error's details, as problems naming a node (by id) and a field of it, or a field of the flow.
  function problemsFromDetails(details, sent) {
    return (Array.isArray(details) ? details : []).map(function (d) {
      if ("node" in d) return d;
      var parts = String(d.field || "").split(".");
      if (parts[0] === "draft" && parts[1] === "nodes" && sent.draft.nodes[Number(parts[2])]) {
        return { node: sent.draft.nodes[Number(parts[2])].id, field: parts.slice(4).join("."), message: d.message };
      }
      if (parts[0] === "draft") return { node: null, field: parts.slice(1).join(".") || "start", message: d.message };
      return { node: null, field: parts.join("."), message: d.message };
    });
  }

  function unchosenBranches() {
    var found = [];
    state.draft.nodes.forEach(function (node) {
      branchesOf(node).forEach(function (branch) {
        if (!branch.target) found.push({ node: node.id, field: branch.field, message: T.required });
      });
    });
    return found;
  }

  // --- fields of a node card ----------------------------------------------------------------------------

  // A labelled control with the problems of its field under it; `card.claimed` lists the fields a card shows.
  function field(card, name, label, control, help) {
    card.claimed.push(name);
    var messages = messagesFor(card.node.id, name);
    var errorId = control.id + "-error";
    if (messages.length) control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", errorId);
    control.dataset.focusKey = card.node.id + ":" + name;
    return el("div", { class: "field vf-field vf-field-" + name.split(".")[0] }, [
      el("label", { for: control.id, text: label }),
      control,
      help ? el("p", { class: "muted small", text: help }) : null,
      el("p", { class: "field-error", id: errorId, text: messages.join(" ") }),
    ]);
  }

  function changed() { updateSaveState(); }

  // What the caller hears: a recorded prompt when one is chosen (with a player to hear it), else the words.
  function promptField(card, optional) {
    var node = card.node;
    var prompt = node.prompt || {};
    var recording = recordingSelect(node, prompt.recorded_id);
    var player = el("audio", { controls: "controls", preload: "none", class: "vf-player" });
    var input = el("textarea", {
      id: controlId(node.id, "prompt"), rows: 2, maxlength: 1000, value: prompt.text || "",
      oninput: function () { update(); },
    });
    function showPlayer() {
      var chosen = DATA.recordings.filter(function (r) { return String(r.id) === recording.value; })[0];
      player.hidden = !chosen;
      if (chosen && player.dataset.src !== chosen.audio_url) { player.dataset.src = chosen.audio_url; player.src = chosen.audio_url; }
    }
    function update() {
      var next = {};
      if (recording.value) next.recorded_id = Number(recording.value);
      if (input.value.trim() || !recording.value) next.text = input.value;
      if (optional && !recording.value && !input.value.trim()) delete node.prompt;
      else node.prompt = next;
      showPlayer();
      changed();
    }
    recording.addEventListener("change", update);
    showPlayer();
    var words = field(card, "prompt", optional ? T.fields.prompt_optional : T.fields.prompt, input,
                      DATA.recordings.length ? T.fields.words_help : null);
    return el("div", { class: "vf-prompt" }, [
      el("div", { class: "field vf-field" }, [
        el("label", { for: recording.id, text: T.fields.recorded }), recording, player,
      ]),
      words,
    ]);
  }

  function recordingSelect(node, current) {
    var options = [el("option", { value: "", text: T.speak_words })].concat(DATA.recordings.map(function (r) {
      return el("option", { value: String(r.id), text: fmt(T.recording_option, { name: r.name, seconds: r.seconds }) });
    }));
    var known = DATA.recordings.some(function (r) { return r.id === current; });
    if (current && !known) options.push(el("option", { value: String(current), text: fmt(T.missing_recording, { id: current }) }));
    var select = el("select", { id: controlId(node.id, "recorded") }, options);
    select.value = current ? String(current) : "";
    return select;
  }

  function numberField(card, name, min, max, fallback) {
    var node = card.node;
    var input = el("input", {
      id: controlId(node.id, name), type: "number", min: min, max: max, placeholder: String(fallback), class: "vf-number",
      value: node[name] === undefined ? "" : String(node[name]),
      oninput: function () {
        if (input.value === "") delete node[name];
        else node[name] = Number(input.value);
        changed();
      },
    });
    return field(card, name, T.fields[name], input);
  }

  function dateField(card, name) {
    var node = card.node;
    var input = el("input", {
      id: controlId(node.id, name), type: "date", value: node[name] || "",
      onchange: function () {
        if (input.value) node[name] = input.value;
        else delete node[name];
        changed();
      },
    });
    return field(card, name, T.fields[name], input);
  }

  function textField(card, name, help) {
    var node = card.node;
    var input = el("input", {
      id: controlId(node.id, name), type: "text", maxlength: 100, value: node[name] || "",
      oninput: function () { node[name] = input.value; changed(); },
    });
    return field(card, name, T.fields[name], input, help);
  }

  function checkField(card, name) {
    var node = card.node;
    card.claimed.push(name);
    var input = el("input", {
      id: controlId(node.id, name), type: "checkbox", checked: node[name] !== false,
      onchange: function () { node[name] = input.checked; changed(); },
    });
    input.dataset.focusKey = node.id + ":" + name;
    return el("div", { class: "field vf-field" }, [
      el("label", { class: "check", for: input.id }, [input, " " + T.fields[name]]),
      el("p", { class: "field-error", text: messagesFor(node.id, name).join(" ") }),
    ]);
  }

  function selectField(card, name, options) {
    var node = card.node;
    var select = el("select", {
      id: controlId(node.id, name),
      onchange: function () { node[name] = select.value; changed(); },
    }, options.map(function (o) { return el("option", { value: o[0], text: o[1] }); }));
    select.value = node[name];
    return field(card, name, T.fields[name], select);
  }

  // --- where a branch leads: a select of the nodes, and "+ new node" of each kind ----------------------

  function targetOptions(current) {
    var nodes = byId();
    var options = [];
    if (!current) options.push(el("option", { value: "", text: T.choose }));
    if (current && !(current in nodes)) options.push(el("option", { value: current, text: fmt(T.missing_node, { id: current }) }));
    Object.keys(nodes).forEach(function (id) {
      options.push(el("option", { value: id, text: nodeLabel(id, nodes[id]) }));
    });
    var fresh = el("optgroup", { label: T.new_node }, DATA.kinds.map(function (kind) {
      return el("option", { value: NEW_OPTION + kind, text: fmt(T.new_node_option, { kind: kindLabel(kind) }) });
    }));
    return options.concat([fresh]);
  }

  function targetSelect(node, fieldName, current, label) {
    var select = el("select", {
      id: controlId(node.id, fieldName), class: "vf-target", "aria-label": label + " (" + node.id + ")",
      onchange: function () { leadTo(node, fieldName, select.value); },
    }, targetOptions(current));
    select.value = current || "";
    return select;
  }

  function roomForAnother() {
    if (state.draft.nodes.length < DATA.max_nodes) return true;
    window.plToast(fmt(T.too_many, { max: DATA.max_nodes }), "error");
    return false;
  }

  function leadTo(node, fieldName, value) {
    if (value.indexOf(NEW_OPTION) === 0) {
      if (!roomForAnother()) { render(); return; }
      var created = newNode(value.slice(NEW_OPTION.length));
      state.draft.nodes.push(created);
      setBranch(node, fieldName, created.id);
      render({ focus: created.id + ":id" });
      return;
    }
    setBranch(node, fieldName, value);
    render({ focus: node.id + ":" + fieldName });
  }

  function branchField(card, name, label) {
    return field(card, name, label, targetSelect(card.node, name, card.node[name], label));
  }

  // --- the keys of a menu ----------------------------------------------------------------------------------

  function choiceRow(card, key) {
    var node = card.node;
    var name = "choices." + key;
    card.claimed.push(name);
    var keySelect = el("select", {
      id: controlId(node.id, name + ".key"), class: "vf-key", "aria-label": fmt(T.change_key, { key: key }) + " (" + node.id + ")",
      onchange: function () { renameKey(node, key, keySelect.value); },
    }, KEYS.filter(function (k) { return k === key || !(k in node.choices); }).map(function (k) {
      return el("option", { value: k, text: k });
    }));
    keySelect.value = key;
    keySelect.dataset.focusKey = node.id + ":" + name + ".key";
    var target = targetSelect(node, name, node.choices[key], fmt(T.branches.key, { key: key }));
    target.dataset.focusKey = node.id + ":" + name;
    var messages = messagesFor(node.id, name);
    if (messages.length) target.setAttribute("aria-invalid", "true");
    target.setAttribute("aria-describedby", target.id + "-error");
    var removeLabel = fmt(T.remove_key, { key: key });
    var remove = el("button", {
      type: "button", class: "small", text: "×", title: removeLabel, "aria-label": removeLabel + " (" + node.id + ")",
      onclick: function () { delete node.choices[key]; render({ focus: node.id + ":add-key" }); },
    });
    return el("li", { class: "vf-choice", "data-key": key }, [
      keySelect, el("span", { "aria-hidden": "true", text: "→" }), target, remove,
      el("p", { class: "field-error", id: target.id + "-error", text: messages.join(" ") }),
    ]);
  }

  function renameKey(node, from, to) {
    var choices = {};
    Object.keys(node.choices).forEach(function (k) { choices[k === from ? to : k] = node.choices[k]; });
    node.choices = choices;
    render({ focus: node.id + ":choices." + to + ".key" });
  }

  function addKey(node) {
    var free = KEYS.filter(function (k) { return !(k in node.choices); })[0];
    if (free === undefined) { window.plToast(T.no_keys_left, "error"); return; }
    node.choices[free] = "";
    render({ focus: node.id + ":choices." + free });
  }

  function choicesField(card) {
    var node = card.node;
    card.claimed.push("choices");
    var add = el("button", { type: "button", class: "small", text: T.add_key, onclick: function () { addKey(node); } });
    add.dataset.focusKey = node.id + ":add-key";
    var own = problemsOf(node.id).filter(function (p) { return p.field === "choices"; }).map(function (p) { return p.message; });
    return el("fieldset", { class: "field vf-field vf-choices" }, [
      el("legend", { text: T.fields.choices }),
      el("ul", { class: "vf-choice-list" }, keysOf(node.choices).map(function (key) { return choiceRow(card, key); })),
      add,
      el("p", { class: "field-error", text: own.join(" ") }),
    ]);
  }

  // --- queues, knowledge items, transfers --------------------------------------------------------------------

  function queueSelect(node, id) {
    var options = [];
    if (!node.queue_id) options.push(el("option", { value: "", text: T.choose }));
    var known = DATA.queues.some(function (q) { return q.id === node.queue_id; });
    if (node.queue_id && !known) {
      options.push(el("option", { value: String(node.queue_id), text: fmt(T.unknown_queue, { id: node.queue_id }) }));
    }
    DATA.queues.forEach(function (q) {
      options.push(el("option", { value: String(q.id), text: q.active ? q.name : fmt(T.inactive_queue, { name: q.name }) }));
    });
    var select = el("select", {
      id: id,
      onchange: function () {
        if (select.value) node.queue_id = Number(select.value);
        else delete node.queue_id;
        changed();
      },
    }, options);
    select.value = node.queue_id ? String(node.queue_id) : "";
    return select;
  }

  function queueField(card) {
    return field(card, "queue_id", T.fields.queue_id, queueSelect(card.node, controlId(card.node.id, "queue_id")));
  }

  function itemTitle(itemId) {
    var item = DATA.items.filter(function (i) { return i.id === itemId; })[0];
    if (!item) return T.unknown_item;
    return item.spoken ? item.question : item.question + " (" + T.no_spoken + ")";
  }

  function itemField(card) {
    var node = card.node;
    var title = el("p", { class: "vf-item-title small", text: node.item_id ? itemTitle(node.item_id) : "" });
    var input = el("input", {
      id: controlId(node.id, "item_id"), type: "text", inputmode: "numeric", list: "vf-items", autocomplete: "off",
      class: "vf-item", value: node.item_id ? String(node.item_id) : "",
      oninput: function () {
        var number = /^\d+$/.test(input.value.trim()) ? Number(input.value.trim()) : null;
        if (number) node.item_id = number;
        else delete node.item_id;
        title.textContent = number ? itemTitle(number) : "";
        changed();
      },
    });
    var wrapped = field(card, "item_id", T.fields.item_id, input, T.fields.item_help);
    wrapped.insertBefore(title, input.nextSibling);
    return wrapped;
  }

  function transferField(card) {
    var node = card.node;
    var toNumber = node.number !== undefined && node.queue_id === undefined;
    var group = "n-" + node.id + "-target";
    function mode(value, label) {
      var radio = el("input", {
        type: "radio", name: group, value: value, checked: (value === "number") === toNumber,
        onchange: function () { switchTransfer(node, value); },
      });
      radio.dataset.focusKey = node.id + ":target-" + value;
      return el("label", { class: "check" }, [radio, " " + label]);
    }
    var modes = el("fieldset", { class: "field vf-field" }, [
      el("legend", { text: T.fields.target }), mode("queue", T.fields.to_queue), mode("number", T.fields.to_number),
    ]);
    if (!toNumber) return [modes, queueField(card)];
    var input = el("input", {
      id: controlId(node.id, "number"), type: "tel", maxlength: 20, value: node.number || "",
      oninput: function () { node.number = input.value.trim(); changed(); },
    });
    return [modes, field(card, "number", T.fields.number, input)];
  }

  function switchTransfer(node, value) {
    if (value === "number") { delete node.queue_id; node.number = ""; }
    else {
      delete node.number;
      var queue = DATA.queues.filter(function (q) { return q.active; })[0];
      if (queue) node.queue_id = queue.id;
    }
    render({ focus: node.id + ":target-" + value });
  }

  // --- a node card -----------------------------------------------------------------------------------------------

  function fieldsOf(card) {
    var kind = card.node.type;
    var out = [];
    if (kind === "hangup") out.push(promptField(card, true));
    else if (WITH_PROMPT.indexOf(kind) >= 0) out.push(promptField(card, false));
    if (kind === "announcement") out.push(dateField(card, "active_from"), dateField(card, "active_until"));
    if (kind === "hours") out.push(textField(card, "hours", T.fields.hours_help), checkField(card, "working_days_only"));
    if (kind === "menu") {
      out.push(choicesField(card), numberField(card, "timeout_seconds", 1, 60, 5), numberField(card, "retries", 0, 5, 2));
    }
    if (kind === "collect") {
      var kinds = Object.keys(T.collect_kinds).map(function (k) { return [k, T.collect_kinds[k]]; });
      out.push(selectField(card, "kind", kinds), numberField(card, "min_digits", 1, 20, 1), numberField(card, "max_digits", 1, 20, 20),
               numberField(card, "timeout_seconds", 1, 60, 8), numberField(card, "retries", 0, 5, 2));
    }
    if (kind === "knowledge") out.push(itemField(card));
    if (kind === "voicemail") out.push(numberField(card, "max_seconds", 10, 300, 120));
    if (kind === "callback") out.push(queueField(card));
    if (kind === "transfer") out = out.concat(transferField(card));
    return out;
  }

  function branchFieldsOf(card) {
    var node = card.node;
    var labels = {
      menu: [["otherwise", T.branches.menu_otherwise]],
      collect: [["next", T.branches.collect_next], ["otherwise", T.branches.collect_otherwise]],
      hours: [["open", T.branches.open], ["closed", T.branches.closed]],
    }[node.type] || (SEQUENCE.indexOf(node.type) >= 0 ? [["next", T.branches.next]] : []);
    return labels.map(function (pair) { return branchField(card, pair[0], pair[1]); });
  }

  function renameNode(node, input, error) {
    var wanted = input.value.trim();
    if (wanted === node.id) return;
    var message = !ID_PATTERN.test(wanted) ? T.bad_id : (wanted in byId() ? fmt(T.taken_id, { id: wanted }) : "");
    if (message) {
      error.textContent = message;
      input.setAttribute("aria-invalid", "true");
      return;
    }
    var old = node.id;
    state.draft.nodes.forEach(function (other) {
      branchesOf(other).forEach(function (b) { if (b.target === old) setBranch(other, b.field, wanted); });
    });
    if (state.draft.start === old) state.draft.start = wanted;
    allProblems().forEach(function (p) { if (p.node === old) p.node = wanted; });
    node.id = wanted;
    render({ focus: wanted + ":id" });
  }

  function cardHead(card, via) {
    var node = card.node;
    var error = el("p", { class: "field-error", id: controlId(node.id, "id") + "-error" });
    var idInput = el("input", {
      id: controlId(node.id, "id"), class: "vf-id", maxlength: 32, value: node.id, autocomplete: "off",
      "aria-label": T.fields.id, "aria-describedby": error.id, spellcheck: "false",
      onchange: function () { renameNode(node, idInput, error); },
      onkeydown: function (event) { if (event.key === "Enter") { event.preventDefault(); renameNode(node, idInput, error); } },
    });
    idInput.dataset.focusKey = node.id + ":id";
    var isStart = state.draft.start === node.id;
    var makeStart = el("button", {
      type: "button", class: "small", text: T.make_start,
      onclick: function () { state.draft.start = node.id; render({ focus: node.id + ":id" }); },
    });
    var remove = el("button", {
      type: "button", class: "small danger", text: T.delete_node, "aria-label": T.delete_node + " " + node.id,
      onclick: function () { deleteNode(node); },
    });
    return el("div", { class: "vf-node-head" }, [
      via ? el("span", { class: "vf-via", text: via + " →" }) : null,
      el("span", { class: "vf-kind", text: kindLabel(node.type) }),
      idInput,
      isStart ? el("span", { class: "pill ok", text: T.start }) : makeStart,
      el("span", { class: "vf-spacer" }),
      remove,
      error,
    ]);
  }

  function deleteNode(node) {
    state.draft.nodes.splice(state.draft.nodes.indexOf(node), 1);
    render({ focus: "tree" });
  }

  function leftoverProblems(card) {
    return problemsOf(card.node.id).filter(function (p) {
      return !card.claimed.some(function (f) { return covers(f, p.field || ""); });
    });
  }

  function nodeCard(node, depth, via) {
    var card = { node: node, claimed: [] };
    var fields = fieldsOf(card).concat(branchFieldsOf(card));
    var leftover = leftoverProblems(card);
    var ending = DATA.ends.indexOf(node.type) >= 0;
    var section = el("section", {
      class: "vf-node vf-kind-" + node.type + (ending ? " is-end" : "") + (problemsOf(node.id).length ? " has-problems" : ""),
      id: "node-" + node.id, tabindex: "-1", "aria-label": fmt(T.node_label, { id: node.id }), "data-node": node.id,
    }, [
      cardHead(card, via),
      leftover.length
        ? el("ul", { class: "vf-node-problems" }, leftover.map(function (p) { return el("li", { text: p.message }); }))
        : null,
      el("div", { class: "vf-fields" }, fields),
      ending ? el("p", { class: "muted small vf-end", text: T.an_end }) : null,
    ]);
    section.style.setProperty("--depth", String(Math.min(depth, 8)));
    return section;
  }

  function linkRow(id, depth, via) {
    var row = el("p", { class: "vf-link" }, [
      via ? el("span", { class: "vf-via", text: via + " →" }) : null,
      el("a", {
        href: "#node-" + id, text: fmt(T.go_to, { id: id }),
        onclick: function (event) { event.preventDefault(); focusNode(id); },
      }),
    ]);
    row.style.setProperty("--depth", String(Math.min(depth, 8)));
    return row;
  }

  function missingRow(id, depth, via) {
    var row = el("p", { class: "vf-link vf-missing" }, [
      via ? el("span", { class: "vf-via", text: via + " →" }) : null,
      el("span", { text: "⚠ " + fmt(T.leads_nowhere, { id: id }) }),
    ]);
    row.style.setProperty("--depth", String(Math.min(depth, 8)));
    return row;
  }

  // --- the tree -------------------------------------------------------------------------------------------------------

  // A node reached a second time is a link to its card; a node that follows another in sequence (play,
  // notice, knowledge answer) stays at its depth, branches are indented.
  function walk(id, depth, via, out, walked) {
    if (!id) return;
    var node = byId()[id];
    if (!node) out.push(missingRow(id, depth, via));
    else if (walked.indexOf(node) >= 0) out.push(linkRow(id, depth, via));
    else walkFrom(node, depth, via, out, walked);
  }

  function walkFrom(node, depth, via, out, walked) {
    walked.push(node);
    out.push(nodeCard(node, depth, via));
    var branches = branchesOf(node);
    if (SEQUENCE.indexOf(node.type) >= 0) { walk(branches[0].target, depth, "", out, walked); return; }
    branches.forEach(function (b) { walk(b.target, depth + 1, b.label, out, walked); });
  }

  function renderTree() {
    var out = [];
    var walked = [];
    walk(state.draft.start, 0, "", out, walked);
    var unreached = state.draft.nodes.filter(function (node) { return walked.indexOf(node) < 0; });
    if (unreached.length) {
      out.push(el("h3", { class: "vf-unreached", text: T.unreached }));
      out.push(el("p", { class: "muted small", text: T.unreached_help }));
      unreached.forEach(function (node) { if (walked.indexOf(node) < 0) walkFrom(node, 0, "", out, walked); });
    }
    var tree = document.getElementById("vf-tree");
    tree.textContent = "";
    out.forEach(function (item) { tree.appendChild(item); });
  }

  function renderStart() {
    var select = document.getElementById("vf-start");
    var nodes = byId();
    select.textContent = "";
    if (!(state.draft.start in nodes)) {
      select.appendChild(el("option", { value: state.draft.start, text: fmt(T.missing_node, { id: state.draft.start }) }));
    }
    Object.keys(nodes).forEach(function (id) { select.appendChild(el("option", { value: id, text: nodeLabel(id, nodes[id]) })); });
    select.value = state.draft.start;
    var messages = messagesFor(null, "start");
    document.getElementById("vf-start-error").textContent = messages.join(" ");
    if (messages.length) select.setAttribute("aria-invalid", "true");
    else select.removeAttribute("aria-invalid");
  }

  // A field as its card labels it: "choices.1" is "Key 1", a menu's "otherwise" is "No valid key".
  function fieldLabel(nodeId, name) {
    var node = byId()[nodeId];
    var branch = node && branchesOf(node).filter(function (b) { return covers(b.field, name); })[0];
    if (branch) return branch.label;
    var first = name.split(".")[0];
    return T.fields[first] || name;
  }

  function problemWhere(p) {
    var where = fmt(T.node_label, { id: p.node });
    if (p.node) return p.field && p.field !== "id" ? where + " · " + fieldLabel(p.node, p.field) : where;
    return p.field === "start" ? T.start_node : T.flow_field;
  }

  function renderProblems() {
    var list = document.getElementById("vf-problem-list");
    list.textContent = "";
    var problems = allProblems();
    problems.forEach(function (p) {
      var text = fmt(T.draft_problem, { where: problemWhere(p), message: p.message });
      var item = p.node
        ? el("a", { href: "#node-" + p.node, text: text, onclick: function (event) { event.preventDefault(); focusProblem(p); } })
        : el("span", { text: text });
      list.appendChild(el("li", {}, [item]));
    });
    document.getElementById("vf-no-problems").textContent = problems.length ? "" : T.no_problems;
  }

  function renderSettingsErrors() {
    root.querySelectorAll("[data-setting]").forEach(function (input) {
      var messages = messagesFor(null, input.dataset.setting);
      root.querySelector('[data-error-for="' + input.dataset.setting + '"]').textContent = messages.join(" ");
      if (messages.length) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    });
  }

  function focusKeyOfActive() {
    var active = document.activeElement;
    return active && active.dataset ? active.dataset.focusKey : undefined;
  }

  function render(options) {
    var focus = (options && options.focus) || focusKeyOfActive();
    renderStart();
    renderTree();
    renderProblems();
    renderSettingsErrors();
    updateSaveState();
    if (focus === "tree") document.getElementById("vf-tree").focus();
    else if (focus) {
      var target = root.querySelector('[data-focus-key="' + CSS.escape(focus) + '"]');
      if (target) target.focus();
    }
  }

  function focusNode(id) {
    var card = document.getElementById("node-" + id);
    if (card) { card.scrollIntoView({ block: "center" }); card.focus(); }
  }

  function focusProblem(p) {
    var control = root.querySelector('[data-focus-key="' + CSS.escape(p.node + ":" + (p.field || "id")) + '"]');
    if (control) { control.scrollIntoView({ block: "center" }); control.focus(); }
    else focusNode(p.node);
  }

  // --- the flow's header, versions and the save state ------------------------------------------------------------

  function when(iso) {
    var options = { timeZone: DATA.timezone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" };
    try { return new Date(iso).toLocaleString("sv-SE", options); } catch (e) { return iso; }
  }

  function versionRow(version) {
    var live = version.number === state.flow.live_version;
    var status = live
      ? el("span", { class: "pill ok", text: T.live })
      : el("button", { type: "button", class: "small", text: T.put_live, onclick: function () { goLive(version.number); } });
    return el("tr", { "data-version": String(version.number) }, [
      el("td", { text: "v" + version.number }),
      el("td", { class: "nowrap", text: when(version.published_at) }),
      el("td", { text: DATA.people[String(version.published_by_id)] || "—" }),
      el("td", { text: version.note || "" }),
      el("td", {}, [status]),
    ]);
  }

  function renderHeader() {
    document.getElementById("vf-title").textContent = state.flow.name;
    var live = document.getElementById("vf-live");
    live.textContent = state.flow.live_version ? fmt(T.published, { number: state.flow.live_version }) : T.not_published;
    live.className = "pill" + (state.flow.live_version ? " ok" : "");
    var body = document.getElementById("vf-versions");
    body.textContent = "";
    state.versions.forEach(function (v) { body.appendChild(versionRow(v)); });
    document.getElementById("vf-no-versions").textContent = state.versions.length ? "" : T.no_versions;
    document.getElementById("vf-delete-zone").hidden = state.flow.live_version !== null;
  }

  function updateSaveState() {
    var dirty = isDirty();
    var label = document.getElementById("vf-state");
    label.textContent = dirty ? T.unsaved : T.all_saved;
    label.classList.toggle("vf-dirty", dirty);
  }

  function showMessage(text, stale) {
    var box = document.getElementById("vf-message");
    box.hidden = !text;
    document.getElementById("vf-message-text").textContent = text || "";
    document.getElementById("vf-reload").hidden = !stale;
    if (text) box.focus();
  }

  function fillSettings() {
    root.querySelectorAll("[data-setting]").forEach(function (input) { input.value = state.settings[input.dataset.setting]; });
  }

  // --- talking to the API ------------------------------------------------------------------------------------------

  function payload() {
    return {
      version: state.flow.version, name: state.settings.name.trim(), number: state.settings.number.trim() || null,
      description: state.settings.description.trim(), draft: JSON.parse(JSON.stringify(state.draft)),
    };
  }

  function accept(flow) {
    state.flow = flow;
    state.problems = flow.problems || [];
  }

  function refused(result, sent) {
    var stale = result.status === 409 && result.body.error_id === "stale_version";
    state.errors = stale ? [] : problemsFromDetails(result.body.details, sent);
    render();
    showMessage(stale ? T.stale : (result.body.message || T.error), stale);
  }

  async function withBusy(work) {
    if (state.busy) return false;
    state.busy = true;
    root.classList.add("vf-busy");
    root.querySelectorAll("#vf-save, #vf-publish, #vf-delete").forEach(function (b) { b.disabled = true; });
    try { return await work(); } finally {
      state.busy = false;
      root.classList.remove("vf-busy");
      root.querySelectorAll("#vf-save, #vf-publish, #vf-delete").forEach(function (b) { b.disabled = false; });
    }
  }

  async function saveDraft() {
    var unchosen = unchosenBranches();
    if (unchosen.length) {
      state.errors = unchosen;
      render();
      showMessage(T.required);
      focusProblem(unchosen[0]);
      return false;
    }
    var sent = payload();
    var settings = Object.assign({}, state.settings);
    var result = await window.plSend("PATCH", API, sent);
    if (!result.ok) { refused(result, sent); return false; }
    accept(result.body);
    state.errors = [];
    state.saved = JSON.stringify({ settings: settings, draft: sent.draft });  // what was sent, not what was typed since
    showMessage("");
    render();
    renderHeader();
    window.plToast(state.problems.length ? T.saved_with_problems : T.saved, state.problems.length ? "info" : "ok");
    return true;
  }

  function save() { return withBusy(saveDraft); }

  async function refresh() {
    var flow = await window.plSend("GET", API);
    if (flow.ok) { state.flow = Object.assign(flow.body, { draft: state.flow.draft }); state.problems = flow.body.problems || []; }
    var versions = await window.plSend("GET", API + "/versions");
    if (versions.ok) state.versions = versions.body;
    renderHeader();
    render();
  }

  function publish() {
    return withBusy(async function () {
      if (isDirty() && !(await saveDraft())) return;
      var note = document.getElementById("vf-note");
      var result = await window.plSend("POST", API + "/publish", { version: state.flow.version, note: note.value.trim() });
      if (result.ok) {
        note.value = "";
        showMessage("");
        window.plToast(fmt(T.published, { number: result.body.number }), "ok");
        await refresh();
        return;
      }
      if (result.body.error_id === "flow_not_publishable") {
        state.errors = [];
        state.problems = problemsFromDetails(result.body.details, payload());
        render();
        showMessage(result.body.message || T.error);
        return;
      }
      refused(result, payload());
    });
  }

  function goLive(number) {
    if (!window.confirm(fmt(T.confirm_live, { number: number }))) return;
    withBusy(async function () {
      var result = await window.plSend("POST", API + "/live", { version: state.flow.version, number: number });
      if (!result.ok) { refused(result, payload()); return; }
      state.flow = Object.assign(result.body, { draft: state.flow.draft });
      showMessage("");
      renderHeader();
      window.plToast(fmt(T.went_live, { number: number }), "ok");
    });
  }

  function deleteFlow() {
    if (!window.confirm(T.confirm_delete)) return;
    withBusy(async function () {
      var result = await window.plSend("DELETE", API + "?version=" + state.flow.version);
      if (!result.ok) { refused(result, payload()); return; }
      state.saved = snapshot();
      sessionStorage.setItem("pl-flash", "✓");
      window.location = "/voice/flows";
    });
  }

  // --- wiring ------------------------------------------------------------------------------------------------------------

  function addUnlinkedNode() {
    if (!roomForAnother()) return;
    var created = newNode(document.getElementById("vf-add-kind").value);
    state.draft.nodes.push(created);
    render({ focus: created.id + ":id" });
  }

  function wire() {
    var kinds = document.getElementById("vf-add-kind");
    DATA.kinds.forEach(function (kind) { kinds.appendChild(el("option", { value: kind, text: kindLabel(kind) })); });
    var items = document.getElementById("vf-items");
    DATA.items.forEach(function (item) { items.appendChild(el("option", { value: String(item.id), label: item.question })); });
    root.querySelectorAll("[data-setting]").forEach(function (input) {
      input.addEventListener("input", function () { state.settings[input.dataset.setting] = input.value; changed(); });
    });
    document.getElementById("vf-start").addEventListener("change", function (event) {
      state.draft.start = event.target.value;
      render();
    });
    document.getElementById("vf-add-node").addEventListener("click", addUnlinkedNode);
    document.getElementById("vf-save").addEventListener("click", save);
    document.getElementById("vf-publish").addEventListener("click", publish);
    document.getElementById("vf-delete").addEventListener("click", deleteFlow);
    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === "s") {
        event.preventDefault();
        var active = document.activeElement;
        if (active && active.classList.contains("vf-id")) active.dispatchEvent(new Event("change"));  // a rename being typed
        save();
      }
    });
    window.addEventListener("beforeunload", function (event) {
      if (!isDirty()) return;
      event.preventDefault();
      event.returnValue = "";
    });
  }

  state.saved = snapshot();
  fillSettings();
  wire();
  renderHeader();
  render();
})();
