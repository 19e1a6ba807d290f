/* The call log (/voice/calls): Play puts an audio player with the call's recording (GET
   /api/voice/calls/{id}/recording, audited by the server) in place of the button and starts it; the
   filter shows only the calls (of those listed) that ended one way. */
(function () {
  "use strict";

  var texts = {};
  try { texts = JSON.parse(document.getElementById("vc-texts").textContent); } catch (e) { texts = {}; }

  function play(button) {
    var cell = button.parentNode;
    var audio = document.createElement("audio");
    audio.controls = true;
    audio.preload = "auto";
    audio.src = button.dataset.play;
    audio.addEventListener("error", function () {
      var note = document.createElement("p");
      note.className = "field-error";
      note.setAttribute("role", "alert");
      note.textContent = texts.cannot_play || "";
      cell.appendChild(note);
    }, { once: true });
    cell.replaceChild(audio, button);
    audio.focus();
    var started = audio.play();
    if (started && started.catch) started.catch(function () { /* the controls are there to start it by hand */ });
  }

  function filter(select) {
    document.querySelectorAll("[data-testid=call-log] tbody tr").forEach(function (row) {
      row.hidden = Boolean(select.value) && row.dataset.ended !== select.value;
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-play]");
    if (button) play(button);
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-vc-filter]")) filter(event.target);
  });
})();
