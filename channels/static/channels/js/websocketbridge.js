/*
 * channels WebSocketBridge: a small browser client for channels consumers.
 *
 * - reconnects with capped exponential back-off (a server restart or a deploy must not leave
 *   pages dead), and queues sends made while disconnected (bounded, oldest dropped first);
 * - speaks JSON: listen(cb) gets parsed messages;
 * - demultiplexes WebsocketDemultiplexer streams: frames are {"stream": name, "payload": {...}}.
 *
 *   const bridge = new channels.WebSocketBridge();
 *   bridge.connect("/ws/chat/lobby/");
 *   bridge.listen((message, stream) => console.log(stream, message));
 *   bridge.demultiplex("updates", (payload) => render(payload));
 *   bridge.send({text: "hi"});
 *   bridge.stream("updates").send({action: "create", data: {}});
 */
(function (root) {
  "use strict";

  function absoluteUrl(url) {
    if (/^wss?:\/\//.test(url)) return url;
    const scheme = root.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + root.location.host + (url || "/");
  }

  class WebSocketBridge {
    constructor(options) {
      const opts = options || {};
      this.minDelay = opts.minReconnectDelay || 500;
      this.maxDelay = opts.maxReconnectDelay || 10000;
      this.maxQueued = opts.maxQueued || 1000;
      this.streams = {};
      this.defaultHandler = null;
      this.queue = [];
      this.socket = null;
      this.attempts = 0;
      this.closedByUser = false;
    }

    connect(url, protocols) {
      this.url = absoluteUrl(url);
      this.protocols = protocols;
      this.closedByUser = false;
      this.open();
      return this;
    }

    open() {
      const socket = this.protocols ? new WebSocket(this.url, this.protocols) : new WebSocket(this.url);
      this.socket = socket;
      socket.onopen = () => {
        this.attempts = 0;
        const pending = this.queue;
        this.queue = [];
        pending.forEach((text) => socket.send(text));
        if (this.onopen) this.onopen();
      };
      socket.onmessage = (event) => this.dispatch(event.data);
      socket.onclose = (event) => {
        if (this.onclose) this.onclose(event);
        if (this.closedByUser) return;
        const delay = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempts));
        this.attempts += 1;
        setTimeout(() => this.open(), delay * (0.5 + Math.random() / 2));
      };
    }

    dispatch(raw) {
      let message;
      try {
        message = JSON.parse(raw);
      } catch (err) {
        message = raw;
      }
      if (message && typeof message === "object" && "stream" in message && "payload" in message) {
        const handler = this.streams[message.stream];
        if (handler) {
          handler(message.payload, message.stream);
          return;
        }
      }
      if (this.defaultHandler) this.defaultHandler(message, null);
    }

    listen(callback) {
      this.defaultHandler = callback;
      return this;
    }

    demultiplex(stream, callback) {
      this.streams[stream] = callback;
      return this;
    }

    send(message) {
      const text = typeof message === "string" ? message : JSON.stringify(message);
      if (this.socket && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(text);
      } else {
        if (this.queue.length >= this.maxQueued) this.queue.shift();
        this.queue.push(text);
      }
    }

    stream(name) {
      return { send: (payload) => this.send({ stream: name, payload: payload }) };
    }

    close(code) {
      this.closedByUser = true;
      if (this.socket) this.socket.close(code || 1000);
    }
  }

  root.channels = root.channels || {};
  root.channels.WebSocketBridge = WebSocketBridge;
})(typeof window !== "undefined" ? window : this);
