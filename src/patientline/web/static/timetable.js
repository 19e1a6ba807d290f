/* Clinic sessions editor: the ticked cells of the 7×3 grid become the doctor's weekly set, sent in one
   PUT with the doctor's version (plSend from app.js). A refused cell is outlined. */
(function () {
  "use strict";

  function cellValue(cell) {
    return {
      weekday: Number(cell.dataset.weekday),
      half_day: cell.dataset.halfDay,
      kind: cell.querySelector("[data-kind]").value,
      room: cell.querySelector("[data-room]").value,
      note: cell.querySelector("[data-note]").value,
    };
  }

  function showProblems(form, cells, body) {
    var box = form.querySelector(".form-error");
    box.hidden = false;
    box.textContent = body.message || "";
    (Array.isArray(body.details) ? body.details : []).forEach(function (d) {
      var index = Number(String(d.field || "").split(".")[1]);  // "sessions.3.weekday" -> 3
      if (cells[index]) { cells[index].classList.add("tt-invalid"); cells[index].title = d.message || ""; }
    });
    if (window.plToast) window.plToast(body.message || "", "error");
  }

  document.addEventListener("submit", async function (event) {
    var form = event.target;
    if (!form.matches("[data-sessions-form]")) return;
    event.preventDefault();
    form.querySelectorAll(".tt-invalid").forEach(function (cell) { cell.classList.remove("tt-invalid"); });
    var cells = Array.from(form.querySelectorAll("[data-slot]")).filter(function (cell) {
      return cell.querySelector("[data-on]").checked;
    });
    var button = form.querySelector("[type=submit]");
    button.disabled = true;
    try {
      var payload = { version: Number(form.dataset.version), sessions: cells.map(cellValue) };
      var result = await window.plSend("PUT", form.dataset.action, payload);
      if (!result.ok) { showProblems(form, cells, result.body); return; }
      sessionStorage.setItem("pl-flash", "✓");
      window.location = form.dataset.success;
    } finally {
      button.disabled = false;
    }
  });
})();
