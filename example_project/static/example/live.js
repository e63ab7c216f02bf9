/*
 * What every page of the example does with its socket: open a WebSocketBridge, and show in the
 * header whether it is connected. The bridge reconnects by itself; the badge (and the
 * `data-state` attribute the browser tests read) follow its socket's open and close events.
 */
(function () {
  "use strict";

  function showState(state, text) {
    const badge = document.getElementById("socket-status");
    if (!badge) return;
    badge.dataset.state = state;
    badge.textContent = text;
  }

  /* Opens the bridge on `path`; `onOpen(first)` runs on every (re)connection. */
  function openLive(path, onOpen) {
    const bridge = new channels.WebSocketBridge();
    // Shorter waits than the defaults (1.5 s, growing to 10 s): a restarted server is back
    // within a second or two, and the page should be too.
    bridge.connect(path, undefined, {minReconnectionDelay: 500, maxReconnectionDelay: 4000});
    let opened = 0;
    bridge.socket.addEventListener("open", function () {
      opened += 1;
      showState("open", "live");
      if (onOpen) onOpen(opened === 1);
    });
    bridge.socket.addEventListener("close", function () {
      showState("closed", "reconnecting…");
    });
    return bridge;
  }

  /* "14:03:27" for an ISO date, in the browser's time zone. */
  function clock(iso) {
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  }

  window.example = {openLive: openLive, clock: clock};
})();
