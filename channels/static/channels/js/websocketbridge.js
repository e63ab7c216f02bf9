/*
 * channels WebSocketBridge: the browser client for channels consumers (Channels 1.1's API).
 *
 *   const bridge = new channels.WebSocketBridge();
 *   bridge.connect("/ws/chat/lobby/");
 *   bridge.listen((message, stream) => console.log(message));
 *   bridge.demultiplex("updates", (payload, stream) => render(payload));
 *   bridge.send({text: "hi"});
 *   bridge.stream("updates").send({action: "create", data: {}});
 *   bridge.socket.addEventListener("open", () => console.log("(re)connected"));
 *
 * Loads as a classic <script> (global `channels.WebSocketBridge`), through CommonJS `require()`,
 * and as an ES module through websocketbridge.mjs next to it. Documented in docs/javascript.md.
 */
(function (root, factory) {
  "use strict";
  const api = factory(root);
  if (typeof module === "object" && module && module.exports) {
    module.exports = api;
  }
  // Always published on the global too: websocketbridge.mjs reads it from there, which is the
  // one way a browser module can import a file that must also load as a classic script.
  if (root) {
    root.channels = root.channels || {};
    root.channels.WebSocketBridge = api.WebSocketBridge;
    root.channels.ReconnectingSocket = api.ReconnectingSocket;
  }
})(typeof globalThis !== "undefined" ? globalThis : typeof window !== "undefined" ? window : this,
function (root) {
  "use strict";

  const CONNECTING = 0;
  const OPEN = 1;
  const CLOSING = 2;
  const CLOSED = 3;
  const EVENT_TYPES = ["open", "message", "close", "error"];

  // Channels 1.1's client took these from reconnecting-websocket 3.x; pages tuned against
  // them, so the names and the defaults stay.
  const RECONNECT_DEFAULTS = Object.freeze({
    maxReconnectionDelay: 10000,
    minReconnectionDelay: 1500,
    reconnectionDelayGrowFactor: 1.3,
    connectionTimeout: 4000,
    maxRetries: Infinity,
    debug: false,
  });

  const DEFAULT_MAX_QUEUED = 1000;

  function hasOwn(object, key) {
    return object !== null && object !== undefined && Object.prototype.hasOwnProperty.call(object, key);
  }

  /*
   * Reconnect settings from the bridge's options overlaid by connect()'s: unknown keys are
   * ignored (1.1 passed its options on to a library that ignored them too), wrong values are
   * refused here so a typo fails at connect() rather than as a page that never reconnects.
   */
  function reconnectConfig(...sources) {
    const config = Object.assign({}, RECONNECT_DEFAULTS, { constructor: root.WebSocket });
    for (const source of sources) {
      if (source === undefined || source === null) continue;
      if (typeof source !== "object") {
        throw new TypeError(`WebSocketBridge options must be an object, got ${typeof source}`);
      }
      for (const key of Object.keys(config)) {
        if (hasOwn(source, key) && source[key] !== undefined) config[key] = source[key];
      }
    }
    for (const key of ["maxReconnectionDelay", "minReconnectionDelay", "connectionTimeout"]) {
      if (typeof config[key] !== "number" || !(config[key] >= 0) || !isFinite(config[key])) {
        throw new TypeError(`${key} must be a finite number of milliseconds >= 0, got ${config[key]}`);
      }
    }
    if (typeof config.reconnectionDelayGrowFactor !== "number" || !(config.reconnectionDelayGrowFactor >= 1)) {
      throw new TypeError(`reconnectionDelayGrowFactor must be a number >= 1, got ${config.reconnectionDelayGrowFactor}`);
    }
    if (typeof config.maxRetries !== "number" || !(config.maxRetries >= 0)) {
      throw new TypeError(`maxRetries must be a number >= 0 (or Infinity), got ${config.maxRetries}`);
    }
    if (typeof config.constructor !== "function") {
      throw new TypeError("No WebSocket implementation: this environment has no global WebSocket; "
        + "pass one as the `constructor` option");
    }
    config.debug = Boolean(config.debug);
    return config;
  }

  /*
   * A WebSocket URL for `url` as the page sees it: relative URLs resolve against the page the
   * way links do, http(s) becomes ws(s), and no URL at all means the page's own path.
   */
  function resolveUrl(url, location) {
    if (url !== undefined && url !== null && typeof url !== "string") {
      throw new TypeError(`The WebSocket URL must be a string, got ${typeof url}`);
    }
    if (url && /^wss?:\/\//i.test(url)) return url;
    if (!location || !(location.href || location.host)) {
      throw new TypeError(`Cannot resolve the WebSocket URL ${JSON.stringify(url)} without a page `
        + "location; pass an absolute ws:// or wss:// URL");
    }
    const page = location.href || `${location.protocol}//${location.host}${location.pathname || "/"}`;
    // No URL means the site root, as Channels 1.1's bridge did.
    const target = new URL(url || "/", page);
    const schemes = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" };
    if (!hasOwn(schemes, target.protocol)) {
      throw new TypeError(`Cannot make a WebSocket URL from ${target.href}: only http(s) and ws(s) work`);
    }
    // Browsers refuse WebSocket URLs with a fragment.
    return `${schemes[target.protocol]}//${target.host}${target.pathname}${target.search}`;
  }

  function makeError(code, message) {
    const error = new Error(message);
    error.code = code;
    error.type = "error";
    return error;
  }

  function makeCloseEvent(code, reason) {
    return { type: "close", code: code, reason: reason || "", wasClean: false };
  }

  // A throwing callback must not stop the others nor the reconnect logic; report it the way
  // the browser reports errors of event listeners.
  function reportError(error) {
    if (typeof root.reportError === "function") {
      root.reportError(error);
    } else {
      setTimeout(() => { throw error; }, 0);
    }
  }

  function callSafely(callback, thisArg, ...args) {
    try {
      callback.apply(thisArg, args);
    } catch (error) {
      reportError(error);
    }
  }

  /*
   * A WebSocket that reconnects, keeping one identity: listeners and on* handlers set once keep
   * receiving the events of every connection it makes (what reconnecting-websocket, the socket of
   * Channels 1.1's bridge, did). Each attempt that fails or ends gives one "close" event.
   */
  class ReconnectingSocket {
    constructor(url, protocols, options, hooks) {
      this.url = url;
      this.protocols = protocols;
      this.onopen = null;
      this.onmessage = null;
      this.onclose = null;
      this.onerror = null;
      this._config = reconnectConfig(options);
      this._hooks = hooks || {};
      this._listeners = {};
      this._ws = null;
      this._opened = false;
      this._retries = 0;
      this._delay = 0;
      this._nextDelay = null;
      this._keepClosed = false;
      this._connectTimer = null;
      this._retryTimer = null;
      this._binaryType = null;
      this._log("connecting to", url);
      this._connect(true);
    }

    get readyState() {
      return this._ws ? this._ws.readyState : CLOSED;
    }

    get protocol() {
      return this._ws ? this._ws.protocol : "";
    }

    get extensions() {
      return this._ws ? this._ws.extensions : "";
    }

    get bufferedAmount() {
      return this._ws ? this._ws.bufferedAmount : 0;
    }

    get binaryType() {
      if (this._binaryType !== null) return this._binaryType;
      return this._ws ? this._ws.binaryType : "blob";
    }

    set binaryType(value) {
      this._binaryType = value;
      if (this._ws) this._ws.binaryType = value;
    }

    send(data) {
      if (this.readyState !== OPEN) {
        const error = new Error(`The WebSocket is not open (readyState ${this.readyState}); `
          + "WebSocketBridge.send() queues until it is");
        error.name = "InvalidStateError";
        throw error;
      }
      this._ws.send(data);
    }

    /*
     * Like reconnecting-websocket's close(): the socket reconnects afterwards unless
     * `{keepClosed: true}` is given (WebSocketBridge.close() passes it); `{delay: ms}` sets the
     * wait before that reconnect.
     */
    close(code, reason, options) {
      const opts = options || {};
      if (opts.keepClosed) {
        this._keepClosed = true;
        clearTimeout(this._retryTimer);
        this._retryTimer = null;
      }
      if (typeof opts.delay === "number") this._nextDelay = opts.delay;
      const ws = this._ws;
      if (!ws) return;
      this._log("close", { code, reason, keepClosed: this._keepClosed });
      if (!this._opened) {
        // Closing a socket that is still connecting gives no close event in every runtime
        // (Node's leaves it CONNECTING for ever), so the attempt ends here.
        this._abandon(ws);
        this._ended(makeCloseEvent(code || 1000, reason));
        return;
      }
      ws.close(code === undefined ? 1000 : code, reason === undefined ? "" : reason);
    }

    addEventListener(type, listener, options) {
      if (!listener) return;
      const once = typeof options === "object" && options !== null && Boolean(options.once);
      const listeners = this._listeners[type] || (this._listeners[type] = []);
      if (!listeners.some((entry) => entry.listener === listener)) {
        listeners.push({ listener, once });
      }
    }

    removeEventListener(type, listener) {
      const listeners = this._listeners[type];
      if (listeners) this._listeners[type] = listeners.filter((entry) => entry.listener !== listener);
    }

    dispatchEvent(event) {
      this._emit(event.type, event, false);
      return true;
    }

    _log(...args) {
      if (this._config.debug) console.log("channels.WebSocketBridge:", ...args);
    }

    _connect(first) {
      this._retryTimer = null;
      if (this._keepClosed) return;
      const Ctor = this._config.constructor;
      let ws;
      try {
        // A null protocols argument would ask the server for a subprotocol named "null".
        const noProtocols = this.protocols === undefined || this.protocols === null;
        ws = noProtocols ? new Ctor(this.url) : new Ctor(this.url, this.protocols);
      } catch (error) {
        // A URL the browser refuses fails the same way every time: tell the caller at once.
        if (first) throw error;
        this._emit("error", error);
        this._ended(makeCloseEvent(1006, String(error && error.message)));
        return;
      }
      this._ws = ws;
      this._opened = false;
      if (this._binaryType !== null) ws.binaryType = this._binaryType;
      ws.onopen = (event) => { if (ws === this._ws) this._onOpen(event); };
      ws.onmessage = (event) => { if (ws === this._ws) this._emit("message", event); };
      ws.onerror = (event) => { if (ws === this._ws) this._onError(ws, event); };
      ws.onclose = (event) => {
        if (ws !== this._ws) return;
        this._abandon(ws);
        this._ended(event);
      };
      this._connectTimer = setTimeout(() => {
        if (ws !== this._ws || this._opened) return;
        this._log("connection timeout after", this._config.connectionTimeout, "ms");
        this._abandon(ws);
        this._emit("error", makeError("ETIMEDOUT", "Connection timeout"));
        this._ended(makeCloseEvent(1006, "Connection timeout"));
      }, this._config.connectionTimeout);
    }

    _onOpen(event) {
      clearTimeout(this._connectTimer);
      this._opened = true;
      this._retries = 0;
      this._delay = 0;
      this._log("open", this.url);
      this._emit("open", event);
    }

    _onError(ws, event) {
      this._emit("error", event);
      if (!this._opened && ws === this._ws) {
        // A failed handshake: browsers follow with a close event, Node's WebSocket never does.
        this._abandon(ws);
        this._ended(makeCloseEvent(1006, ""));
      }
    }

    // Forget a socket so nothing it does later (a late close, a late open) reaches the page.
    _abandon(ws) {
      clearTimeout(this._connectTimer);
      this._connectTimer = null;
      if (this._ws === ws) this._ws = null;
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      if (ws.readyState === CONNECTING || ws.readyState === OPEN) {
        try {
          ws.close();
        } catch (error) {
          // Already failing: nothing more to close.
        }
      }
    }

    _ended(closeEvent) {
      this._opened = false;
      this._emit("close", closeEvent);
      if (this._keepClosed) {
        this._log("closed for good");
        return;
      }
      this._retries += 1;
      if (this._retries > this._config.maxRetries) {
        this._log("giving up after", this._config.maxRetries, "retries");
        this._keepClosed = true;
        this._emit("error", makeError("EHOSTDOWN", "Too many failed connection attempts"));
        return;
      }
      const config = this._config;
      if (this._nextDelay !== null) {
        this._delay = this._nextDelay;
        this._nextDelay = null;
      } else if (!this._delay) {
        // Random first wait, so the pages of a restarted server do not all come back at once.
        this._delay = config.minReconnectionDelay * (1 + Math.random());
      } else {
        this._delay *= config.reconnectionDelayGrowFactor;
      }
      this._delay = Math.min(this._delay, config.maxReconnectionDelay);
      this._log("reconnecting in", Math.round(this._delay), "ms (retry", this._retries + ")");
      this._retryTimer = setTimeout(() => this._connect(false), this._delay);
    }

    _emit(type, event, withHooks = true) {
      const hook = withHooks ? this._hooks[type] : null;
      if (typeof hook === "function") callSafely(hook, this, event);
      const handler = this[`on${type}`];
      if (typeof handler === "function") callSafely(handler, this, event);
      const listeners = this._listeners[type];
      if (!listeners) return;
      for (const entry of listeners.slice()) {
        if (entry.once) this.removeEventListener(type, entry.listener);
        if (typeof entry.listener === "function") {
          callSafely(entry.listener, this, event);
        } else if (typeof entry.listener.handleEvent === "function") {
          callSafely(entry.listener.handleEvent, entry.listener, event);
        }
      }
    }
  }

  for (const [name, value] of [["CONNECTING", CONNECTING], ["OPEN", OPEN], ["CLOSING", CLOSING],
    ["CLOSED", CLOSED]]) {
    ReconnectingSocket[name] = value;
    ReconnectingSocket.prototype[name] = value;
  }
  ReconnectingSocket.EVENT_TYPES = EVENT_TYPES;

  /*
   * JSON messages over a ReconnectingSocket, with the stream demultiplexing of
   * channels.generic.websockets.WebsocketDemultiplexer ({"stream": name, "payload": ...}).
   */
  class WebSocketBridge {
    constructor(options) {
      this.options = Object.assign({}, options);
      this.socket = null;
      this.streams = {};
      this.default_cb = null;
      this.onopen = null;
      this.onclose = null;
      const maxQueued = hasOwn(this.options, "maxQueued") ? this.options.maxQueued : DEFAULT_MAX_QUEUED;
      if (typeof maxQueued !== "number" || !(maxQueued >= 0)) {
        throw new TypeError(`maxQueued must be a number >= 0, got ${maxQueued}`);
      }
      this.maxQueued = maxQueued;
      this.queuedFrames = [];
      this._queueOverflowReported = false;
    }

    connect(url, protocols, options) {
      const config = reconnectConfig(this.options, options);
      const resolved = resolveUrl(url, root.location);
      if (this.socket) this.socket.close(1000, "", { keepClosed: true });
      this.socket = new ReconnectingSocket(resolved, protocols, config, {
        open: () => {
          this._flushQueue();
          if (typeof this.onopen === "function") this.onopen();
        },
        message: (event) => this._dispatch(event.data),
        close: (event) => {
          if (typeof this.onclose === "function") this.onclose(event);
        },
      });
      return this;
    }

    listen(callback) {
      this.default_cb = callback || null;
      return this;
    }

    demultiplex(stream, callback) {
      this.streams[stream] = callback;
      return this;
    }

    send(message) {
      const text = JSON.stringify(message);
      if (text === undefined) {
        throw new TypeError(`Cannot send ${typeof message} as JSON`);
      }
      if (this.socket && this.socket.readyState === OPEN && this.queuedFrames.length === 0) {
        this.socket.send(text);
        return;
      }
      this._enqueue(text);
      this._flushQueue();
    }

    stream(name) {
      return { send: (payload) => this.send({ stream: name, payload: payload }) };
    }

    close(code, reason) {
      if (this.socket) this.socket.close(code || 1000, reason || "", { keepClosed: true });
    }

    _enqueue(text) {
      if (this.maxQueued === 0) {
        console.warn("channels.WebSocketBridge: not connected and maxQueued is 0; message dropped");
        return;
      }
      if (this.queuedFrames.length >= this.maxQueued) {
        this.queuedFrames.shift();
        if (!this._queueOverflowReported) {
          this._queueOverflowReported = true;
          console.warn(`channels.WebSocketBridge: more than ${this.maxQueued} messages waiting `
            + "for the connection; dropping the oldest");
        }
      }
      this.queuedFrames.push(text);
    }

    _flushQueue() {
      while (this.queuedFrames.length && this.socket && this.socket.readyState === OPEN) {
        this.socket.send(this.queuedFrames[0]);
        this.queuedFrames.shift();
      }
      if (this.queuedFrames.length === 0) this._queueOverflowReported = false;
    }

    /*
     * As Channels 1.1: an object with a `stream` key goes to that stream's callback only
     * (payload undefined when missing) and is dropped if the stream has none; anything else that
     * is JSON goes to listen()'s callback with stream null. Text that is not JSON, and binary
     * frames, reach no callback (1.1 threw on them); they are reported on the console and stay
     * visible to bridge.socket's "message" listeners.
     */
    _dispatch(data) {
      let message;
      try {
        if (typeof data !== "string") throw new TypeError("binary frame");
        message = JSON.parse(data);
      } catch (error) {
        const shown = typeof data === "string" ? JSON.stringify(data.slice(0, 100)) : "(binary)";
        console.error(`channels.WebSocketBridge: a frame that is not JSON reached no callback: ${shown}`);
        return;
      }
      if (message !== null && typeof message === "object" && message.stream !== undefined) {
        const callback = hasOwn(this.streams, message.stream) ? this.streams[message.stream] : null;
        if (typeof callback === "function") {
          callback(message.payload, message.stream);
        } else if (this.socket) {
          this.socket._log("no demultiplex() callback for stream", message.stream, "; frame dropped");
        }
        return;
      }
      if (typeof this.default_cb === "function") this.default_cb(message, null);
    }
  }

  WebSocketBridge.reconnectDefaults = RECONNECT_DEFAULTS;
  WebSocketBridge.resolveUrl = resolveUrl;

  return { WebSocketBridge, ReconnectingSocket, resolveUrl };
});
