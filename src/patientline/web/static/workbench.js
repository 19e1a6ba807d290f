/* The agent workbench (patients/workbench_pages.py): the caller search posting to /api/patients/search
   (the typed text never goes into a URL), candidates, registration with the API's field errors, the
   verification that attaches a caller to the contact, reveals with a reason, flags, notes, VIP, merge,
   export and "notify when ready". "/" focuses the search (app.js), Enter searches and Enter again opens
   the first candidate, Esc closes a dialog (native <dialog>). */
(function () {
  "use strict";

  var TEXTS = {};
  try { TEXTS = JSON.parse((document.getElementById("wb-texts") || {}).textContent || "{}"); } catch (e) { TEXTS = {}; }
  function t(key, fallback) { return TEXTS[key] || fallback; }
  var fill = window.plText.fill;
  function toast(message, level) { if (window.plToast) window.plToast(message, level); }
  function send(method, url, body) { return window.plSend(method, url, body); }
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function withContact(path, contactId) { return contactId ? path + "?contact=" + encodeURIComponent(contactId) : path; }

  // --- errors next to their fields ----------------------------------------------------------------

  function holderFor(form, field) {
    if (!field) return null;
    var names = [field, field.replace(/\.\d+$/, ""), field.split(".")[0]];
    for (var i = 0; i < names.length; i++) {
      var holder = form.querySelector('[data-field="' + CSS.escape(names[i]) + '"]');
      if (holder) return holder;
    }
    return null;
  }
  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (p) { p.hidden = true; p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (node) { node.removeAttribute("aria-invalid"); });
    var box = form.querySelector(".form-error");
    if (box) { box.hidden = true; box.textContent = ""; }
  }
  function showErrors(form, body) {
    body = body || {};
    var message = body.message || t("error", "Something went wrong.");
    var box = form.querySelector(".form-error");
    if (box) { box.hidden = false; box.textContent = message; }
    var details = Array.isArray(body.details) ? body.details
      : (body.details && typeof body.details === "object" && body.details.field ? [{ field: body.details.field, message: message }] : []);
    var first = null;
    details.forEach(function (d) {
      var holder = holderFor(form, d.field || "");
      if (!holder) return;
      var p = holder.querySelector(".field-error");
      if (p) { p.hidden = false; p.textContent = d.message || message; }
      var input = holder.querySelector("input:not([type=checkbox]), select, textarea");
      if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
    });
    if (first) first.focus();
    if (!box) toast(message, "error");
  }

  // --- the search --------------------------------------------------------------------------------

  var last = { query: null, candidates: [], contactId: null };

  function candidateItem(c, contactId) {
    var li = el("li", "wb-candidate");
    li.setAttribute("data-testid", "wb-candidate");
    var main = el("div");
    var line = el("div");
    line.appendChild(el("span", "who", c.name_masked));
    var facts = [(TEXTS.sex || {})[c.sex] || c.sex];
    if (c.age !== null && c.age !== undefined) facts.push(fill(t("age", "{age} years"), { age: c.age }));
    line.appendChild(document.createTextNode(" "));
    line.appendChild(el("span", "muted", facts.join(" · ")));
    if (c.vip_level) { line.appendChild(document.createTextNode(" ")); line.appendChild(el("span", "wb-badge vip", fill(t("vip", "VIP {level}"), { level: c.vip_level }))); }
    (c.flags || []).forEach(function (kind) {
      line.appendChild(document.createTextNode(" "));
      line.appendChild(el("span", "wb-badge flag", (TEXTS.flag || {})[kind] || kind));
    });
    if (c.prospective) { line.appendChild(document.createTextNode(" ")); line.appendChild(el("span", "wb-badge prospective", t("prospective", "Prospective"))); }
    main.appendChild(line);
    var meta = el("div", "meta");
    (c.phones_masked || []).forEach(function (p) { meta.appendChild(el("span", "wb-number", p)); });
    Object.keys(c.identifiers_masked || {}).forEach(function (kind) {
      var span = el("span", "", ((TEXTS.identifier || {})[kind] || kind) + " ");
      span.appendChild(el("span", "wb-number", c.identifiers_masked[kind]));
      meta.appendChild(span);
    });
    main.appendChild(meta);
    li.appendChild(main);
    var actions = el("div", "actions");
    var open = el("a", "button small", t("open", "Open card"));
    open.href = withContact("/workbench/patients/" + c.id, contactId);
    open.setAttribute("data-wb-open", "");
    actions.appendChild(open);
    li.appendChild(actions);
    return li;
  }

  function showRegister(query) {
    var card = document.querySelector("[data-wb-register-card]");
    if (!card) return;
    card.hidden = false;
    var form = card.querySelector("form");
    if (!query || !form) return;
    // what was typed goes to the field it looks like (in the page only)
    var compact = query.replace(/[\s-]/g, "");
    var target = null;
    if (/^\d{17}[\dXx]$/.test(compact)) target = form.querySelector('[name="identifiers.id_card"]');
    else if (/^\+?\d{7,15}$/.test(compact)) target = form.querySelector('[name="phone"]');
    else if (/\d/.test(compact)) target = form.querySelector('[name="identifiers.mrn"]');
    else if (!/^[a-z\s]+$/i.test(query)) target = form.querySelector('[name="name"]');
    if (target && !target.value) target.value = target.name === "name" ? query.trim() : compact;
  }

  async function search(form) {
    var input = form.querySelector("[name=query]");
    var query = (input.value || "").trim();
    var results = document.querySelector("[data-wb-results]");
    var status = document.querySelector("[data-wb-status]");
    var contactId = form.dataset.contactId || null;
    if (!query) { input.focus(); return; }
    if (query === last.query && last.candidates.length) { // Enter again: the first candidate
      window.location.assign(withContact("/workbench/patients/" + last.candidates[0].id, contactId));
      return;
    }
    status.textContent = t("searching", "Searching…");
    results.setAttribute("aria-busy", "true");
    var result;
    try {
      result = await send("POST", "/api/patients/search", { query: query, purpose: form.dataset.purpose || "workbench" });
    } catch (e) {
      status.textContent = t("offline", "The server cannot be reached.");
      results.removeAttribute("aria-busy");
      return;
    }
    results.removeAttribute("aria-busy");
    results.textContent = "";
    if (!result.ok) {
      last = { query: null, candidates: [], contactId: contactId };
      status.textContent = result.body.message || t("error", "Something went wrong.");
      status.classList.add("field-error");
      return;
    }
    status.classList.remove("field-error");
    var body = result.body;
    last = { query: query, candidates: body.candidates || [], contactId: contactId };
    last.candidates.forEach(function (c) { results.appendChild(candidateItem(c, contactId)); });
    var lines = [];
    if (!last.candidates.length) lines.push(t("nobody", "Nobody found. Register the caller below."));
    else lines.push(fill(t("found", "{count} found · Enter opens the first"), { count: last.candidates.length }));
    if (body.his_problem) lines.push(fill(t("his_problem", "The hospital system could not be asked: {problem}"), { problem: body.his_problem }));
    else if (body.his_searched) lines.push(t("his_searched", "Not in the local index: the hospital system was asked too."));
    status.textContent = lines.join(" ");
    if (!last.candidates.length) showRegister(query);
  }

  // --- registration ------------------------------------------------------------------------------

  function registration(form) {
    var body = { name: "", sex: "unknown", phones: [], identifiers: {} };
    form.querySelectorAll("[name]").forEach(function (input) {
      var value = (input.value || "").trim();
      if (input.name === "contact_phone") { body.contact_phone = input.checked; return; }
      if (input.name === "phone") { if (value) body.phones.push(value); return; }
      if (input.name.indexOf("identifiers.") === 0) { if (value) body.identifiers[input.name.slice(12)] = value; return; }
      if (value === "" && input.hasAttribute("data-omit-empty")) return;
      body[input.name] = value;
    });
    if (form.dataset.contactId) body.contact_id = Number(form.dataset.contactId);  // attached, with its number
    return body;
  }

  async function register(form) {
    clearErrors(form);
    var button = form.querySelector("[type=submit]");
    button.disabled = true;
    try {
      var result = await send("POST", "/api/patients", registration(form));
      if (!result.ok) { showErrors(form, result.body); return; }
      var contactId = form.dataset.contactId || null;
      sessionStorage.setItem("pl-flash", t("registered", "Registered."));
      window.location.assign(withContact("/workbench/patients/" + result.body.id, contactId));
    } catch (e) {
      toast(t("offline", "The server cannot be reached."), "error");
    } finally {
      button.disabled = false;
    }
  }

  // --- verification ------------------------------------------------------------------------------

  function birthDate(text) {
    var digits = text.replace(/[^\d]/g, "");
    if (digits.length !== 8) return text;
    return digits.slice(0, 4) + "-" + digits.slice(4, 6) + "-" + digits.slice(6, 8);
  }

  async function verify(form) {
    var error = form.querySelector(".field-error");
    error.hidden = true;
    var chosen = form.querySelector("[name=method]:checked") || form.querySelector("select[name=method]");
    var method = chosen ? chosen.value : "birth_date";
    var answerInput = form.querySelector("[name=answer]");
    var answer = (answerInput.value || "").trim();
    if (!answer) { answerInput.focus(); return; }
    var body = method === "birth_date" ? { birth_date: birthDate(answer) } : { id_digits: answer.toUpperCase() };
    var contactId = form.dataset.contactId || null;
    if (contactId) body.contact_id = Number(contactId);
    var result = await send("POST", "/api/patients/" + encodeURIComponent(form.dataset.patientId) + "/verify", body);
    if (!result.ok) {
      var details = Array.isArray(result.body.details) ? result.body.details : [];
      error.textContent = (details[0] && details[0].message) || result.body.message || t("error", "Something went wrong.");
      error.hidden = false;
      answerInput.setAttribute("aria-invalid", "true");
      answerInput.focus();
      return;
    }
    if (!contactId) { // nothing to attach: say so where the question was asked
      var done = el("p", "wb-badge ok", t("verified_plain", "Verified."));
      done.setAttribute("role", "status");
      done.setAttribute("data-testid", "wb-verified");
      form.replaceWith(done);
      return;
    }
    toast(t("verified", "Verified: the caller is attached to this contact."), "ok");
    window.location.assign(withContact("/workbench/patients/" + result.body.patient_id, contactId));
  }

  // --- reveal with a reason ----------------------------------------------------------------------

  var revealing = null;

  function openDialog(dialog) {
    if (!dialog) return;
    var form = dialog.querySelector("form");
    if (form) { clearErrors(form); }
    dialog.showModal();
    var first = dialog.querySelector("input:not([type=hidden]), select, textarea");
    if (first) first.focus();
  }

  async function reveal(form) {
    clearErrors(form);
    var root = document.querySelector("[data-wb-patient]");
    if (!revealing || !root) return;
    var reason = form.querySelector("[name=reason]").value.trim();
    var result = await send("POST", "/api/patients/" + root.dataset.wbPatient + "/reveal",
      { what: revealing.what, item_id: Number(revealing.itemId), reason: reason });
    if (!result.ok) { showErrors(form, result.body); return; }
    var value = document.querySelector('[data-wb-value="' + revealing.what + "-" + revealing.itemId + '"]');
    if (value) { value.textContent = result.body.value; value.classList.add("revealed"); }
    if (revealing.button) revealing.button.hidden = true;
    form.reset();
    form.closest("dialog").close();
    revealing = null;
  }

  // --- generic JSON dialogs ----------------------------------------------------------------------

  function values(form) {
    var data = {};
    form.querySelectorAll("[name]").forEach(function (input) {
      if (input.hasAttribute("data-path")) return;
      var type = input.dataset.type || "";
      if (type === "int") data[input.name] = input.value === "" ? null : Number(input.value);
      else data[input.name] = input.value;
    });
    return data;
  }

  async function submitForm(form) {
    clearErrors(form);
    var url = form.dataset.url;
    if (form.dataset.urlTemplate) {
      url = form.dataset.urlTemplate.replace(/\{(\w+)\}/g, function (_, key) {
        var input = form.querySelector('[name="' + key + '"]');
        return encodeURIComponent(input ? input.value : "");
      });
    }
    var data = values(form);
    if (form.hasAttribute("data-confirm-merge") && !window.confirm(fill(t("confirm_merge", "Merge #{id}?"), { id: data.duplicate_id }))) return;
    var result = await send(form.dataset.method || "POST", url, data);
    if (!result.ok) { showErrors(form, result.body); return; }
    sessionStorage.setItem("pl-flash", "✓");
    window.location.reload();
  }

  async function addNote(form) {
    clearErrors(form);
    var note = form.querySelector("[name=note]").value.trim();
    if (!note) { form.querySelector("[name=note]").focus(); return; }
    var id = encodeURIComponent(form.dataset.contactId);
    var contact = await send("GET", "/api/contacts/" + id);
    if (!contact.ok) { showErrors(form, contact.body); return; }
    var notes = contact.body.notes ? contact.body.notes + "\n" + note : note;
    var result = await send("PATCH", "/api/contacts/" + id, { version: contact.body.version, notes: notes });
    if (!result.ok) { showErrors(form, result.body); return; }
    form.reset();
    form.closest("dialog").close();
    toast(t("noted", "The note was added to the contact."), "ok");
  }

  async function exportData(form) {
    clearErrors(form);
    var reason = form.querySelector("[name=reason]").value.trim();
    var response = await fetch(form.dataset.url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": document.body.dataset.csrf || "" },
      body: JSON.stringify({ reason: reason }),
    });
    if (!response.ok) {
      var body = {};
      try { body = await response.json(); } catch (e) { body = {}; }
      showErrors(form, body);
      return;
    }
    var blob = await response.blob();
    var match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = match ? match[1] : "patient.json";
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    form.reset();
    form.closest("dialog").close();
    toast(t("exported", "The export was downloaded."), "ok");
  }

  async function subscribe(button) {
    button.disabled = true;
    var result = await send("POST", "/api/patients/" + encodeURIComponent(button.dataset.patientId) + "/result-subscriptions",
      { order_number: button.dataset.order });
    if (!result.ok) { button.disabled = false; toast(result.body.message || t("error", "Something went wrong."), "error"); return; }
    var note = el("span", "muted small", t("subscribed", "The patient will get a text message when the result is ready."));
    button.replaceWith(note);
  }

  // --- triage ------------------------------------------------------------------------------------

  function clinicLine(clinic) {
    return [clinic.name, clinic.location, clinic.phone].filter(Boolean).join(" · ");
  }

  async function triage(form) {
    clearErrors(form);
    var fields = values(form);
    var body = { text: fields.text || "" };
    if (fields.age !== "" && fields.age !== undefined) body.age = Number(fields.age);
    if (fields.sex) body.sex = fields.sex;
    var alarm = form.parentNode.querySelector("[data-wb-triage-alarm]");
    var list = form.parentNode.querySelector("[data-wb-triage-results]");
    alarm.hidden = true;
    list.textContent = "";
    var result = await send("POST", "/api/assistant/triage", body);
    if (!result.ok) { showErrors(form, result.body); return; }
    alarm.hidden = !result.body.emergency;
    alarm.textContent = result.body.emergency ? result.body.emergency.instruction : "";
    result.body.suggestions.forEach(function (s) {
      var item = el("li", "wb-triage-item");
      item.appendChild(el("strong", "", s.department));
      item.appendChild(el("span", "muted small", s.reason));
      var clinics = el("ul", "wb-triage-clinics");
      if (!s.clinics.length) clinics.appendChild(el("li", "muted small", t("triage_clinic_none", "No department of this hospital is set for it.")));
      s.clinics.forEach(function (c) { clinics.appendChild(el("li", "small", clinicLine(c))); });
      item.appendChild(clinics);
      list.appendChild(item);
    });
    if (!result.body.suggestions.length) list.appendChild(el("li", "muted", t("triage_none", "No suggestion: ask the caller more about what is wrong.")));
  }

  // --- wiring ------------------------------------------------------------------------------------

  document.addEventListener("submit", function (event) {
    var form = event.target;
    var handlers = [
      ["[data-wb-search]", search], ["[data-wb-register]", register], ["[data-wb-verify]", verify],
      ["[data-wb-reveal-form]", reveal], ["[data-wb-form]", submitForm], ["[data-wb-note-form]", addNote],
      ["[data-wb-export-form]", exportData], ["[data-wb-triage]", triage],
    ];
    for (var i = 0; i < handlers.length; i++) {
      if (form.matches(handlers[i][0])) {
        event.preventDefault();
        handlers[i][1](form).catch(function () { toast(t("offline", "The server cannot be reached."), "error"); });
        return;
      }
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target.closest("[data-reveal], [data-wb-dialog], [data-wb-close], [data-wb-clear-flag], [data-wb-subscribe], [data-wb-call]");
    if (!target) return;
    if (target.matches("[data-wb-call]")) {  // the agent bar places the call (routing-bar.js)
      document.dispatchEvent(new CustomEvent("pl:dial", { detail: { patient_phone_id: Number(target.dataset.wbCall) } }));
    } else if (target.matches("[data-reveal]")) {
      revealing = { what: target.dataset.what, itemId: target.dataset.itemId, button: target };
      openDialog(document.getElementById("wb-reveal"));
    } else if (target.matches("[data-wb-dialog]")) {
      openDialog(document.getElementById(target.dataset.wbDialog));
    } else if (target.matches("[data-wb-close]")) {
      target.closest("dialog").close();
    } else if (target.matches("[data-wb-clear-flag]")) {
      var dialog = document.getElementById("wb-clear");
      dialog.querySelector("[name=flag]").value = target.dataset.wbClearFlag;
      openDialog(dialog);
    } else if (target.matches("[data-wb-subscribe]")) {
      subscribe(target).catch(function () { target.disabled = false; toast(t("offline", "The server cannot be reached."), "error"); });
    }
  });

  // typing a new query forgets the last answer (Enter searches again instead of opening)
  document.addEventListener("input", function (event) {
    if (event.target.matches && event.target.matches("[data-wb-search] [name=query]")) last.query = null;
  });

  // the HIS part of the card: loaded after the page; a failure leaves a way to try again
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.matches("[data-wb-his]")) event.detail.target.removeAttribute("aria-busy");
  });
  document.addEventListener("htmx:responseError", function (event) {
    var target = event.detail.target;
    if (target && target.matches && target.matches("[data-wb-his]")) {
      target.removeAttribute("aria-busy");
      var loading = target.querySelector(".wb-loading");
      if (loading) loading.textContent = t("error", "Something went wrong.");
    }
  });
})();
