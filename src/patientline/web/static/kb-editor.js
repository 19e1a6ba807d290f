/* Knowledge editor helpers: the answer preview (sanitised by the server, exactly as it will be
   stored) and picture uploads. */
(function () {
  "use strict";

  window.plPreview = async function (html) {
    if (!html || !html.trim()) return "";
    var result = await window.plSend("POST", "/api/kb/preview", { answer_html: html });
    return result.ok ? result.body.html : "";
  };

  window.plUpload = async function (file, itemId) {
    if (!file) return "";
    var body = new FormData();
    body.append("file", file);
    var response = await fetch("/api/kb/images?item_id=" + encodeURIComponent(itemId), {
      method: "POST",
      headers: { "X-CSRF-Token": document.body.dataset.csrf || "", "Accept": "application/json" },
      body: body,
      credentials: "same-origin",
    });
    var data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (!response.ok) { window.plToast(data.message || "Error", "error"); return ""; }
    window.plToast("✓", "ok");
    return data.url;
  };
})();
