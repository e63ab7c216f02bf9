/*
 * websocketbridge.js on its own: loading it, URL resolution, options, message dispatch with a
 * hand-driven WebSocket, and the reconnect timing against plain TCP listeners on 127.0.0.1.
 * The tests against a live channels-server are in bridge_live.test.js.
 */
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const { afterEach, describe, test } = require("node:test");
const vm = require("node:vm");

const {
  BRIDGE_PATH,
  Collector,
  capturingConsole,
  delay,
  errorWithCode,
  fakeWebSocketClass,
  loadBridge,
  nextEvent,
  tcpListener,
} = require("./helpers.js");

const { WebSocketBridge, ReconnectingSocket, resolveUrl } = loadBridge();

afterEach(() => {
  delete globalThis.location;
});

function pageAt(href) {
  const url = new URL(href);
  globalThis.location = { href: url.href, protocol: url.protocol, host: url.host, pathname: url.pathname };
}

describe("loading", () => {
  test("as a classic script it defines the global channels.WebSocketBridge", () => {
    const window = { console };
    window.window = window;
    // A browser page: no module, no require, `this` is the window.
    vm.runInNewContext(fs.readFileSync(BRIDGE_PATH, "utf8"), window, { filename: BRIDGE_PATH });
    assert.equal(typeof window.channels.WebSocketBridge, "function");
    assert.equal(typeof window.channels.ReconnectingSocket, "function");
    const bridge = new window.channels.WebSocketBridge();
    assert.equal(bridge.socket, null);
  });

  test("a page's own channels object keeps its other members", () => {
    const window = { console, channels: { mine: 1 } };
    vm.runInNewContext(fs.readFileSync(BRIDGE_PATH, "utf8"), window);
    assert.equal(window.channels.mine, 1);
    assert.equal(typeof window.channels.WebSocketBridge, "function");
  });

  test("require() gives the module's API, the same classes as the global", () => {
    assert.equal(typeof WebSocketBridge, "function");
    assert.equal(globalThis.channels.WebSocketBridge, WebSocketBridge);
    assert.equal(globalThis.channels.ReconnectingSocket, ReconnectingSocket);
  });
});

describe("URL resolution", () => {
  function connectedUrl(url) {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge();
    bridge.connect(url, undefined, { constructor: FakeWebSocket });
    bridge.close();
    return FakeWebSocket.instances[0].url;
  }

  test("a relative path resolves against the page's directory, https becomes wss", () => {
    pageAt("https://ex.com/room/");
    assert.equal(connectedUrl("chat/"), "wss://ex.com/room/chat/");
  });

  test("an absolute path keeps the page's host", () => {
    pageAt("https://ex.com/room/");
    assert.equal(connectedUrl("/chat/"), "wss://ex.com/chat/");
  });

  test("no URL means the site root, as Channels 1.1 did", () => {
    pageAt("https://ex.com/room/lobby/?page=2#top");
    assert.equal(connectedUrl(), "wss://ex.com/");
    assert.equal(connectedUrl(""), "wss://ex.com/");
  });

  test("http pages get ws, with the port", () => {
    pageAt("http://127.0.0.1:8000/room/index.html");
    assert.equal(connectedUrl("chat/"), "ws://127.0.0.1:8000/room/chat/");
    assert.equal(connectedUrl("../up/"), "ws://127.0.0.1:8000/up/");
  });

  test("absolute ws and wss URLs are used unchanged", () => {
    pageAt("https://ex.com/room/");
    assert.equal(connectedUrl("ws://other.example:9000/x?y=1"), "ws://other.example:9000/x?y=1");
    assert.equal(connectedUrl("wss://other.example"), "wss://other.example");
  });

  test("absolute http(s) and protocol-relative URLs become ws(s), query kept, fragment dropped", () => {
    pageAt("https://ex.com/room/");
    assert.equal(connectedUrl("http://other.example/x?y=1#f"), "ws://other.example/x?y=1");
    assert.equal(connectedUrl("//other.example/ws/"), "wss://other.example/ws/");
  });

  test("a location with only protocol and host is enough", () => {
    assert.equal(resolveUrl("/chat/", { protocol: "https:", host: "ex.com" }), "wss://ex.com/chat/");
    assert.equal(resolveUrl(undefined, { protocol: "http:", host: "ex.com" }), "ws://ex.com/");
  });

  test("a relative URL without a page location is a clear error", () => {
    assert.throws(() => new WebSocketBridge().connect("/chat/", undefined, { constructor: fakeWebSocketClass() }),
      { name: "TypeError", message: /without a page location.*absolute ws/ });
  });

  test("a URL that is not a string, or a page that is not http(s), is a clear error", () => {
    pageAt("https://ex.com/");
    assert.throws(() => resolveUrl(42, globalThis.location), { name: "TypeError", message: /must be a string/ });
    assert.throws(() => resolveUrl("chat/", { href: "file:///tmp/page.html" }),
      { name: "TypeError", message: /only http\(s\) and ws\(s\)/ });
  });
});

describe("options", () => {
  test("the reconnect defaults are Channels 1.1's", () => {
    assert.deepEqual({ ...WebSocketBridge.reconnectDefaults }, {
      maxReconnectionDelay: 10000,
      minReconnectionDelay: 1500,
      reconnectionDelayGrowFactor: 1.3,
      connectionTimeout: 4000,
      maxRetries: Infinity,
      debug: false,
    });
  });

  test("wrong option values are refused at connect() and leave no socket", () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge();
    for (const [options, message] of [
      [{ maxRetries: -1 }, /maxRetries must be a number >= 0/],
      [{ minReconnectionDelay: "1s" }, /minReconnectionDelay must be a finite number/],
      [{ maxReconnectionDelay: Infinity }, /maxReconnectionDelay must be a finite number/],
      [{ reconnectionDelayGrowFactor: 0.5 }, /reconnectionDelayGrowFactor must be a number >= 1/],
      [{ connectionTimeout: NaN }, /connectionTimeout must be a finite number/],
      ["fast", /options must be an object/],
    ]) {
      assert.throws(() => bridge.connect("ws://127.0.0.1:1/", undefined,
        typeof options === "object" ? { ...options, constructor: FakeWebSocket } : options),
      { name: "TypeError", message });
    }
    assert.equal(bridge.socket, null);
    assert.equal(FakeWebSocket.instances.length, 0);
    assert.throws(() => new WebSocketBridge({ maxQueued: -1 }), { name: "TypeError", message: /maxQueued/ });
  });

  test("without a global WebSocket the error says to pass a constructor", () => {
    const saved = globalThis.WebSocket;
    delete globalThis.WebSocket;
    try {
      assert.throws(() => new WebSocketBridge().connect("ws://127.0.0.1:1/"),
        { name: "TypeError", message: /pass one as the `constructor` option/ });
    } finally {
      globalThis.WebSocket = saved;
    }
  });

  test("constructor options are defaults that connect() options override", async () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket, maxRetries: 5, minReconnectionDelay: 1 });
    bridge.connect("ws://h/", undefined, { maxRetries: 0 });
    const gaveUp = errorWithCode(bridge.socket, "EHOSTDOWN", 1000);
    FakeWebSocket.instances[0].serverClose(1006);
    await gaveUp;
    assert.equal(FakeWebSocket.instances.length, 1, "maxRetries 0 from connect() won over 5");
  });

  test("protocols reach the WebSocket constructor", () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket });
    bridge.connect("ws://h/", ["chat.v1", "chat.v2"]);
    bridge.connect("ws://h/", null);
    bridge.connect("ws://h/");
    bridge.close();
    assert.deepEqual(FakeWebSocket.instances[0].protocols, ["chat.v1", "chat.v2"]);
    // No protocols, or null: the constructor gets the URL alone (null would mean "null").
    assert.deepEqual(FakeWebSocket.instances.map((ws) => ws.argumentCount), [2, 1, 1]);
  });
});

describe("sending", () => {
  test("send() JSON-encodes every message, strings included, as Channels 1.1 did", () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket });
    bridge.connect("ws://h/");
    FakeWebSocket.instances[0].serverOpen();
    bridge.send({ a: 1 });
    bridge.send("hi");
    bridge.stream("updates").send({ action: "create" });
    assert.deepEqual(FakeWebSocket.instances[0].sent,
      ['{"a":1}', '"hi"', '{"stream":"updates","payload":{"action":"create"}}']);
    bridge.close();
  });

  test("what cannot be JSON is refused with a TypeError and queues nothing", () => {
    const bridge = new WebSocketBridge();
    const circular = {};
    circular.self = circular;
    assert.throws(() => bridge.send(undefined), { name: "TypeError", message: /Cannot send undefined/ });
    assert.throws(() => bridge.send(() => 1), { name: "TypeError" });
    assert.throws(() => bridge.send(circular), { name: "TypeError" });
    assert.deepEqual(bridge.queuedFrames, []);
  });

  test("the queue keeps the newest maxQueued messages and warns once", async () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket, maxQueued: 3 });
    const warnings = await capturingConsole("warn", () => {
      for (let n = 1; n <= 5; n += 1) bridge.send({ n });
    });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0][0], /more than 3 messages waiting/);
    bridge.connect("ws://h/");
    FakeWebSocket.instances[0].serverOpen();
    assert.deepEqual(FakeWebSocket.instances[0].sent, ['{"n":3}', '{"n":4}', '{"n":5}']);
    assert.deepEqual(bridge.queuedFrames, []);
    bridge.close();
  });

  test("bridge.socket.send() while not open throws instead of losing the frame silently", () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket });
    bridge.connect("ws://h/");
    assert.throws(() => bridge.socket.send("x"), { name: "InvalidStateError", message: /not open/ });
    bridge.close();
  });
});

describe("dispatch", () => {
  function openBridge() {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket });
    bridge.connect("ws://h/");
    const ws = FakeWebSocket.instances[0];
    ws.serverOpen();
    return { bridge, ws };
  }

  test("demultiplex() works without listen(), and a stream named like an Object method is just a stream", async () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket, debug: true });
    const stream = new Collector("toString stream");
    const logged = await capturingConsole("log", () => {
      bridge.connect("ws://h/");
      const ws = FakeWebSocket.instances[0];
      ws.serverOpen();
      // Not registered yet: dropped, not handed to Object.prototype.toString.
      ws.serverMessage('{"stream": "toString", "payload": {"a": 1}}');
      bridge.demultiplex("toString", stream.push);
      ws.serverMessage('{"stream": "toString", "payload": {"a": 2}}');
      bridge.close();
    });
    assert.deepEqual(stream.items, [[{ a: 2 }, "toString"]]);
    const dropped = logged.filter((args) => args.includes("no demultiplex() callback for stream"));
    assert.equal(dropped.length, 1, JSON.stringify(logged));
    assert.equal(dropped[0][2], "toString");
  });

  test("a binary frame reaches no callback and is reported on the console", async () => {
    const { bridge, ws } = openBridge();
    const messages = new Collector("listen");
    bridge.listen(messages.push);
    const errors = await capturingConsole("error", () => {
      ws.serverMessage(new Uint8Array([123, 125]).buffer);
    });
    assert.deepEqual(messages.items, []);
    assert.equal(errors.length, 1);
    assert.match(errors[0][0], /not JSON reached no callback: \(binary\)/);
    bridge.close();
  });

  test("a throwing callback is reported and does not stop the socket's own listeners", () => {
    const { bridge, ws } = openBridge();
    const reported = [];
    globalThis.reportError = (error) => reported.push(error);
    try {
      const seen = new Collector("socket listener");
      bridge.listen(() => { throw new Error("page bug"); });
      bridge.socket.addEventListener("message", seen.push);
      ws.serverMessage('{"a": 1}');
      assert.equal(reported.length, 1);
      assert.equal(reported[0].message, "page bug");
      assert.equal(seen.items.length, 1);
    } finally {
      delete globalThis.reportError;
      bridge.close();
    }
  });
});

describe("the stable socket", () => {
  test("listeners, on* handlers, once and handleEvent objects follow every reconnect", async () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket, minReconnectionDelay: 1, maxReconnectionDelay: 5 });
    bridge.connect("ws://h/");
    const socket = bridge.socket;
    const opens = new Collector("open listener");
    const onopens = new Collector("onopen");
    const onces = new Collector("once listener");
    const handled = new Collector("handleEvent object");
    const removed = new Collector("removed listener");
    socket.addEventListener("open", opens.push);
    socket.addEventListener("open", opens.push); // a second add of the same listener is ignored
    socket.addEventListener("open", onces.push, { once: true });
    socket.addEventListener("open", { handleEvent: handled.push });
    socket.addEventListener("open", removed.push);
    socket.removeEventListener("open", removed.push);
    socket.onopen = onopens.push;

    FakeWebSocket.instances[0].serverOpen();
    assert.equal(socket.readyState, socket.OPEN);
    FakeWebSocket.instances[0].serverClose(1006);
    assert.equal(socket.readyState, ReconnectingSocket.CLOSED);
    // The reconnect makes a new WebSocket; open it as a server would.
    await FakeWebSocket.created.waitFor(2, 1000);
    const reopened = nextEvent(socket, "open", 1000);
    FakeWebSocket.instances[1].serverOpen();
    await reopened;

    assert.equal(bridge.socket, socket);
    assert.equal(opens.items.length, 2);
    assert.equal(onopens.items.length, 2);
    assert.equal(handled.items.length, 2);
    assert.equal(onces.items.length, 1);
    assert.equal(removed.items.length, 0);
    assert.equal(socket.url, "ws://h/");
    bridge.close();
  });

  test("socket.close() without keepClosed reconnects, as reconnecting-websocket's did", async () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket, minReconnectionDelay: 1, maxReconnectionDelay: 5 });
    bridge.connect("ws://h/");
    FakeWebSocket.instances[0].serverOpen();
    const closed = nextEvent(bridge.socket, "close", 1000);
    bridge.socket.close(4000, "bye");
    assert.deepEqual(FakeWebSocket.instances[0].closeCalls, [[4000, "bye"]]);
    assert.equal((await closed).code, 4000);
    await FakeWebSocket.created.waitFor(2, 1000);
    bridge.close();
  });

  test("close() while still connecting ends the attempt at once and stays closed", async () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket, minReconnectionDelay: 1, maxReconnectionDelay: 5 });
    bridge.connect("ws://h/");
    const closes = new Collector("close events");
    bridge.socket.addEventListener("close", closes.push);
    bridge.close();
    assert.equal(closes.items.length, 1);
    assert.equal(bridge.socket.readyState, ReconnectingSocket.CLOSED);
    // A late open of the abandoned WebSocket reaches nobody.
    FakeWebSocket.instances[0].serverOpen();
    await delay(50);
    assert.equal(FakeWebSocket.instances.length, 1);
    assert.equal(closes.items.length, 1);
  });

  test("connect() again closes the previous socket for good", async () => {
    const FakeWebSocket = fakeWebSocketClass();
    const bridge = new WebSocketBridge({ constructor: FakeWebSocket, minReconnectionDelay: 1, maxReconnectionDelay: 5 });
    bridge.connect("ws://h/one/");
    const first = bridge.socket;
    FakeWebSocket.instances[0].serverOpen();
    bridge.connect("ws://h/two/");
    assert.notEqual(bridge.socket, first);
    await delay(50);
    assert.deepEqual(FakeWebSocket.instances.map((ws) => ws.url), ["ws://h/one/", "ws://h/two/"]);
    assert.equal(first.readyState, ReconnectingSocket.CLOSED);
    bridge.close();
  });
});

describe("reconnect options on real TCP connections", () => {
  test("maxRetries: the bridge gives up after that many failed reconnects, with an EHOSTDOWN error", async () => {
    const listener = await tcpListener("refuse");
    try {
      const bridge = new WebSocketBridge();
      bridge.connect(listener.url, undefined, { maxRetries: 2, minReconnectionDelay: 20, maxReconnectionDelay: 40 });
      const closes = new Collector("close events");
      const errors = new Collector("error events");
      bridge.socket.addEventListener("close", closes.push);
      bridge.socket.addEventListener("error", errors.push);
      const gaveUp = await errorWithCode(bridge.socket, "EHOSTDOWN", 5000);
      assert.match(gaveUp.message, /Too many failed connection attempts/);
      assert.equal(closes.items.length, 3);
      await delay(200); // five times the longest reconnect delay: a fourth attempt would show
      assert.equal(listener.arrivals.items.length, 3);
      assert.equal(bridge.socket.readyState, ReconnectingSocket.CLOSED);
    } finally {
      await listener.close();
    }
  });

  test("maxRetries 0 never reconnects", async () => {
    const listener = await tcpListener("refuse");
    try {
      const bridge = new WebSocketBridge();
      bridge.connect(listener.url, undefined, { maxRetries: 0, minReconnectionDelay: 10, maxReconnectionDelay: 10 });
      await errorWithCode(bridge.socket, "EHOSTDOWN", 5000);
      await delay(100); // ten times the reconnect delay: a second attempt would show
      assert.equal(listener.arrivals.items.length, 1);
    } finally {
      await listener.close();
    }
  });

  test("min/max delay and grow factor shape the waits between attempts", async () => {
    const listener = await tcpListener("refuse");
    try {
      const bridge = new WebSocketBridge();
      bridge.connect(listener.url, undefined, {
        minReconnectionDelay: 50, reconnectionDelayGrowFactor: 4, maxReconnectionDelay: 400, maxRetries: 3,
      });
      const times = await listener.arrivals.waitFor(4, 8000);
      const gaps = times.slice(1).map((time, n) => time - times[n]);
      // First wait: random in [min, 2 min). Then x4 each failure: [200, 400). Then capped at 400
      // (uncapped it would be at least 800). Timers never fire early; the slack is for late ones.
      assert.ok(gaps[0] >= 48 && gaps[0] < 100 + 400, `first gap ${gaps[0]}`);
      assert.ok(gaps[1] >= 198 && gaps[1] < 400 + 400, `second gap ${gaps[1]}`);
      assert.ok(gaps[2] >= 398 && gaps[2] < 800, `third gap ${gaps[2]}`);
      bridge.close();
    } finally {
      await listener.close();
    }
  });

  test("connectionTimeout ends an attempt the server never answers, with an ETIMEDOUT error", async () => {
    const listener = await tcpListener("silent");
    try {
      const bridge = new WebSocketBridge();
      const started = performance.now();
      bridge.connect(listener.url, undefined, { connectionTimeout: 200, minReconnectionDelay: 20, maxReconnectionDelay: 20 });
      const timedOut = nextEvent(bridge.socket, "error", 5000);
      const closed = nextEvent(bridge.socket, "close", 5000);
      const error = await timedOut;
      assert.equal(error.code, "ETIMEDOUT");
      assert.ok(performance.now() - started >= 195, "not before connectionTimeout");
      assert.equal((await closed).code, 1006);
      await listener.arrivals.waitFor(2, 5000); // and it tried again
      bridge.close();
    } finally {
      await listener.close();
    }
  });

  test("debug: true logs the connection's life on the console; false logs nothing", async () => {
    const listener = await tcpListener("refuse");
    try {
      for (const debug of [true, false]) {
        const logged = await capturingConsole("log", async () => {
          const bridge = new WebSocketBridge();
          bridge.connect(listener.url, undefined, { debug, maxRetries: 0 });
          await nextEvent(bridge.socket, "close", 5000);
          bridge.close();
        });
        if (debug) {
          assert.ok(logged.length >= 2, JSON.stringify(logged));
          assert.ok(logged.every((args) => args[0] === "channels.WebSocketBridge:"));
          assert.ok(logged.some((args) => args.includes("giving up after")), JSON.stringify(logged));
        } else {
          assert.deepEqual(logged, []);
        }
      }
    } finally {
      await listener.close();
    }
  });
});
