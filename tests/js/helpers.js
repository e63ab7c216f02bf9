/*
 * Shared by the Node tests of websocketbridge.js: loading the bridge, bounded waits, a fake
 * WebSocket for the pure tests, plain TCP listeners for the reconnect timing tests, and the
 * control channel to the live server the Python side runs.
 */
"use strict";

const net = require("node:net");
const path = require("node:path");

const BRIDGE_PATH = path.resolve(__dirname, "../../channels/static/channels/js/websocketbridge.js");

function loadBridge() {
  return require(BRIDGE_PATH);
}

/* Values pushed from callbacks, awaited by count with a deadline. */
class Collector {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
    this.push = this.push.bind(this);
  }

  push(...args) {
    this.items.push(args.length === 1 ? args[0] : args);
    this.waiters = this.waiters.filter((waiter) => {
      if (this.items.length < waiter.count) return true;
      clearTimeout(waiter.timer);
      waiter.resolve(this.items.slice(0, waiter.count));
      return false;
    });
  }

  waitFor(count, timeoutMs = 5000) {
    if (this.items.length >= count) return Promise.resolve(this.items.slice(0, count));
    return new Promise((resolve, reject) => {
      const waiter = { count, resolve };
      waiter.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((other) => other !== waiter);
        reject(new Error(`${this.name}: ${count} item(s) expected within ${timeoutMs} ms, got `
          + `${this.items.length}: ${JSON.stringify(this.items)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

/* The next `type` event of an EventTarget-like object, or a rejection after timeoutMs. */
function nextEvent(target, type, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const listener = (event) => {
      clearTimeout(timer);
      resolve(event);
    };
    const timer = setTimeout(() => {
      target.removeEventListener(type, listener);
      reject(new Error(`no ${type} event within ${timeoutMs} ms`));
    }, timeoutMs);
    target.addEventListener(type, listener, { once: true });
  });
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/*
 * A WebSocket class whose instances the test drives by hand (open, message, close), recording
 * what the bridge does with them. A fresh class per test keeps instances apart.
 */
function fakeWebSocketClass() {
  class FakeWebSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.argumentCount = arguments.length;
      this.readyState = 0;
      this.binaryType = "blob";
      this.sent = [];
      this.closeCalls = [];
      FakeWebSocket.instances.push(this);
      FakeWebSocket.created.push(this);
    }

    send(data) {
      if (this.readyState !== 1) throw new Error("fake socket not open");
      this.sent.push(data);
    }

    close(code, reason) {
      this.closeCalls.push([code, reason]);
      if (this.readyState >= 2) return;
      this.readyState = 2;
      setImmediate(() => this.serverClose(code === undefined ? 1005 : code, reason));
    }

    serverOpen() {
      this.readyState = 1;
      if (this.onopen) this.onopen({ type: "open" });
    }

    serverMessage(data) {
      if (this.onmessage) this.onmessage({ type: "message", data });
    }

    serverClose(code = 1006, reason = "") {
      this.readyState = 3;
      if (this.onclose) this.onclose({ type: "close", code, reason, wasClean: code !== 1006 });
    }
  }
  FakeWebSocket.CONNECTING = 0;
  FakeWebSocket.OPEN = 1;
  FakeWebSocket.CLOSING = 2;
  FakeWebSocket.CLOSED = 3;
  FakeWebSocket.instances = [];
  FakeWebSocket.created = new Collector("fake WebSockets created");
  return FakeWebSocket;
}

/*
 * A TCP listener on 127.0.0.1 that records when each connection arrives and then either drops
 * it at once ("refuse": the WebSocket handshake fails) or never answers ("silent": only the
 * connection timeout ends the attempt).
 */
async function tcpListener(mode) {
  const sockets = new Set();
  const arrivals = new Collector(`connections to a ${mode} listener`);
  const server = net.createServer((socket) => {
    arrivals.push(performance.now());
    if (mode === "refuse") {
      socket.destroy();
    } else {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
    }
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `ws://127.0.0.1:${server.address().port}/`,
    arrivals,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/* The first error event with this `code` (EHOSTDOWN, ETIMEDOUT) on an EventTarget-like object. */
function errorWithCode(target, code, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const listener = (event) => {
      if (event.code !== code) return;
      clearTimeout(timer);
      target.removeEventListener("error", listener);
      resolve(event);
    };
    const timer = setTimeout(() => {
      target.removeEventListener("error", listener);
      reject(new Error(`no ${code} error within ${timeoutMs} ms`));
    }, timeoutMs);
    target.addEventListener("error", listener);
  });
}

/* console[method] replaced by a recorder for the duration of fn. */
async function capturingConsole(method, fn) {
  const original = console[method];
  const calls = [];
  console[method] = (...args) => calls.push(args);
  try {
    await fn(calls);
  } finally {
    console[method] = original;
  }
  return calls;
}

/* Asks the Python test to stop ("stop": SIGTERM, "kill": SIGKILL) or start the live server. */
async function controlServer(action) {
  const base = process.env.BRIDGE_CONTROL_URL;
  if (!base) throw new Error("BRIDGE_CONTROL_URL is not set: run these tests through pytest");
  const response = await fetch(`${base}/server/${action}`, {
    method: "POST",
    signal: AbortSignal.timeout(20000),
  });
  const text = await response.text();
  if (response.status !== 200) throw new Error(`server/${action} failed: ${response.status} ${text}`);
  return text;
}

module.exports = {
  BRIDGE_PATH,
  Collector,
  capturingConsole,
  controlServer,
  delay,
  errorWithCode,
  fakeWebSocketClass,
  loadBridge,
  nextEvent,
  tcpListener,
};
