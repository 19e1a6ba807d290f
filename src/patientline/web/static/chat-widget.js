/* The chat widget: hospitals add one tag to their pages,
     <script src="https://<patientline>/static/chat-widget.js" async></script>
   and get a button that opens the chat in a frame served by PatientLine (the conversation stays with
   PatientLine's origin; the host page sees none of it). data-lang="en" on the tag opens it in English. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || document.getElementById("pl-chat-widget")) return;
  var origin = new URL(script.src).origin;
  var lang = script.dataset.lang === "en" ? "en" : "zh_CN";
  var label = lang === "en" ? "Chat with us" : "在线咨询";
  var close = lang === "en" ? "Close chat" : "关闭";

  var button = document.createElement("button");
  button.id = "pl-chat-widget";
  button.type = "button";
  button.textContent = label;
  button.setAttribute("aria-expanded", "false");
  button.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483000;padding:12px 18px;border:0;" +
    "border-radius:24px;background:#0b5cad;color:#fff;font:600 16px/1.2 system-ui,sans-serif;cursor:pointer;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25)";

  var frame = document.createElement("iframe");
  frame.title = label;
  frame.hidden = true;
  frame.style.cssText = "position:fixed;right:16px;bottom:72px;z-index:2147483000;width:min(380px,calc(100vw - 32px));" +
    "height:min(600px,calc(100vh - 96px));border:1px solid #d5dce3;border-radius:12px;background:#fff;" +
    "box-shadow:0 8px 28px rgba(0,0,0,.25)";

  button.addEventListener("click", function () {
    if (!frame.src) frame.src = origin + "/chat?embed=1" + (lang === "en" ? "&lang=en" : "");
    frame.hidden = !frame.hidden;
    button.textContent = frame.hidden ? label : close;
    button.setAttribute("aria-expanded", String(!frame.hidden));
  });
  document.body.appendChild(frame);
  document.body.appendChild(button);
})();
