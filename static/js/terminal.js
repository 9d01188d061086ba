// The page's terminal: get a single-use ticket, open the websocket, and wire it to xterm.js.
(function () {
  "use strict";
  var box = document.getElementById("terminal");
  var status = document.getElementById("terminal-status");
  if (!box || !window.Terminal) { return; }
  var term = new window.Terminal({ cols: 100, rows: 30, convertEol: false, cursorBlink: true });
  term.open(box);
  function say(text) { status.textContent = text; }
  fetch(box.dataset.ticketUrl, { method: "POST", headers: { "X-CSRFToken": box.dataset.csrf }, credentials: "same-origin" })
    .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
    .then(function (answer) {
      if (!answer.ok) { say(answer.body.error || "The terminal could not be opened."); return; }
      var scheme = location.protocol === "https:" ? "wss://" : "ws://";
      var ws = new WebSocket(scheme + location.host + answer.body.path);
      ws.binaryType = "arraybuffer";
      ws.onopen = function () {
        say("Connected.");
        ws.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
        term.focus();
      };
      ws.onmessage = function (event) {
        if (typeof event.data === "string") {
          var info = JSON.parse(event.data);
          if (info.type === "exit") { say("Session ended: " + info.reason + " (exit status " + info.code + ")."); }
          return;
        }
        term.write(new Uint8Array(event.data));
      };
      ws.onclose = function (event) {
        if (event.code >= 4000) { say("Refused: " + (event.reason || "code " + event.code)); }
        else if (status.textContent === "Connected.") { say("Disconnected."); }
      };
      term.onData(function (data) {
        if (ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify({ type: "input", data: data })); }
      });
    })
    .catch(function () { say("The terminal could not be opened."); });
})();
