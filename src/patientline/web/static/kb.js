/* The knowledge panel (/kb): keyboard through the results, the answer pane, copy, pin, feedback, the
   caller's wording. The results and the answer are server-rendered fragments (htmx); the actions post JSON
   to the knowledge API. `c` and `p` are the buttons' data-hotkey, handled by app.js. */
(function () {
  "use strict";

  var panel = document.getElementById("kb-panel");
  if (!panel) return;
  var form = document.getElementById("kb-form");
  var box = document.getElementById("kb-q");
  var results = document.getElementById("kb-results");
  var pane = document.getElementById("kb-answer");
  var TEXT = {};
  try { TEXT = JSON.parse(panel.dataset.text || "{}"); } catch (e) { TEXT = {}; }

  var active = -1;
  var settled = "";     // the last query reported to the API as the one the agent settled on
  var openedFor = "";   // the query the agent opened an answer for
  var openWhenShown = false;  // Enter was pressed before the results for the typed text arrived

  function toast(message, level) { if (window.plToast) window.plToast(message, level); }
  function failed(result) { toast((result.body && result.body.message) || "Error", "error"); }
  function typed() { return box.value.trim(); }
  function rows() { return Array.prototype.slice.call(results.querySelectorAll("[data-hit]")); }
  function shown() { return results.querySelector("[data-query]") || { dataset: {} }; }

  function mark(index) {
    var list = rows();
    if (!list.length || index < 0) {
      active = -1;
      box.removeAttribute("aria-activedescendant");
      list.forEach(function (row) { row.setAttribute("aria-selected", "false"); });
      return;
    }
    active = Math.max(0, Math.min(index, list.length - 1));
    list.forEach(function (row, i) { row.setAttribute("aria-selected", i === active ? "true" : "false"); });
    box.setAttribute("aria-activedescendant", list[active].id);
    list[active].scrollIntoView({ block: "nearest" });
  }

  function filterParams() {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== "" && key !== "embed") params.set(key, value);  // "All" sends nothing
    });
    return params;
  }

  // The API collects a settled query that matched nothing well as a candidate question for the editors.
  function settle(query) {
    if (!query || query === settled) return;
    settled = query;
    var params = filterParams();
    params.set("q", query);
    params.set("final", "true");
    params.set("limit", "1");
    window.plSend("GET", "/api/kb/search?" + params.toString());
  }

  function openItem(itemId) {
    openedFor = typed();
    return window.htmx.ajax("GET", "/kb/panel/answer/" + itemId, { target: "#kb-answer", swap: "innerHTML" })
      .then(function () { pane.focus(); });
  }

  function openChosen() {
    var list = rows();
    var row = list[active] || (shown().dataset.good === "true" ? list[0] : null);
    if (row) openItem(row.dataset.hit);
  }

  box.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      mark(active + (event.key === "ArrowDown" ? 1 : -1));
    } else if (event.key === "Enter") {
      event.preventDefault();
      settle(typed());
      if (shown().dataset.query === typed()) openChosen();
      else openWhenShown = true;
    }
  });

  // Cleared without opening anything: the caller's question went unanswered here.
  var previous = typed();
  box.addEventListener("input", function () {
    if (!typed() && previous && openedFor !== previous) settle(previous);
    previous = typed();
  });

  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target !== results) return;
    box.setAttribute("aria-expanded", rows().length ? "true" : "false");
    mark(shown().dataset.good === "true" ? 0 : -1);
    if (openWhenShown && shown().dataset.query === typed()) {
      openWhenShown = false;
      openChosen();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    var inForm = event.target.closest && event.target.closest("[data-outdated-form]");
    if (inForm) { hideOutdated(inForm); return; }
    if (event.target === box || document.querySelector("dialog[open]")) return;
    box.focus();
    box.select();
  });

  function article() { return pane.querySelector("[data-item]"); }

  function copySpoken() {
    var spoken = pane.querySelector("[data-spoken]");
    if (!spoken) return;
    var text = spoken.textContent.trim();
    function byHand() {
      var range = document.createRange();
      range.selectNodeContents(spoken);
      var selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      toast(done ? TEXT.copied : TEXT.copy_failed, done ? "ok" : "error");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { toast(TEXT.copied, "ok"); }, byHand);
    } else {
      byHand();
    }
  }

  async function togglePin(button) {
    var pin = button.getAttribute("aria-pressed") !== "true";
    var url = "/api/kb/items/" + article().dataset.item + "/favourite";
    var result = await window.plSend(pin ? "PUT" : "DELETE", url);
    if (!result.ok) { failed(result); return; }
    button.setAttribute("aria-pressed", pin ? "true" : "false");
    button.querySelector("[data-pin-label]").textContent = pin ? button.dataset.labelOn : button.dataset.labelOff;
    toast(pin ? TEXT.pinned : TEXT.unpinned, "ok");
    window.htmx.ajax("GET", "/kb/panel/side", { target: "#kb-side", swap: "innerHTML" });
  }

  async function sendFeedback(kind, comment) {
    var url = "/api/kb/items/" + article().dataset.item + "/feedback";
    var result = await window.plSend("POST", url, { kind: kind, comment: comment || "" });
    if (!result.ok) { failed(result); return false; }
    toast(TEXT.thanks, "ok");
    return true;
  }

  function showOutdated(button) {
    var outdated = pane.querySelector("[data-outdated-form]");
    outdated.hidden = false;
    button.setAttribute("aria-expanded", "true");
    outdated.querySelector("textarea").focus();
  }

  function hideOutdated(outdated) {
    outdated.hidden = true;
    outdated.reset();
    var button = pane.querySelector("[data-outdated]");
    if (button) { button.setAttribute("aria-expanded", "false"); button.focus(); }
  }

  async function addWording(button) {
    var text = typed();
    if (text.length < 2) { toast(TEXT.type_first, "info"); box.focus(); return; }
    var payload = { text: text, source: "agent", context: "kb-panel" };
    if (button.dataset.item) payload.item_id = Number(button.dataset.item);
    button.disabled = true;
    var result = await window.plSend("POST", "/api/kb/candidates", payload);
    if (!result.ok) { button.disabled = false; failed(result); return; }
    settled = text;  // already with the editors: Enter must not report it a second time
    toast(TEXT.wording_sent, "ok");
  }

  panel.addEventListener("click", function (event) {
    var target = event.target.closest("[data-hit], [data-open], [data-copy], [data-pin], [data-feedback], " +
      "[data-outdated], [data-cancel], [data-add-wording]");
    if (!target) return;
    if (target.matches("[data-hit], [data-open]")) {
      event.preventDefault();
      if (target.matches("[data-hit]")) mark(rows().indexOf(target));
      openItem(target.dataset.hit || target.dataset.open);
    } else if (target.matches("[data-copy]")) {
      copySpoken();
    } else if (target.matches("[data-pin]")) {
      togglePin(target);
    } else if (target.matches("[data-feedback]")) {
      sendFeedback(target.dataset.feedback).then(function (ok) { target.disabled = ok; });
    } else if (target.matches("[data-outdated]")) {
      showOutdated(target);
    } else if (target.matches("[data-cancel]")) {
      hideOutdated(target.closest("[data-outdated-form]"));
    } else if (target.matches("[data-add-wording]")) {
      addWording(target);
    }
  });

  panel.addEventListener("submit", async function (event) {
    var outdated = event.target.closest("[data-outdated-form]");
    if (!outdated) return;
    event.preventDefault();
    var comment = outdated.querySelector("textarea").value.trim();
    if (comment && await sendFeedback("outdated", comment)) hideOutdated(outdated);
  });

  mark(shown().dataset.good === "true" ? 0 : -1);
})();
