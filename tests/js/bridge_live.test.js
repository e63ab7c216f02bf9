/*
 * websocketbridge.js against a live channels-server and runworker on Redis, started by
 * tests/js/test_websocketbridge.py, which passes BRIDGE_WS_BASE (ws://127.0.0.1:port) and
 * BRIDGE_CONTROL_URL (where these tests ask for the server to be stopped and started again).
 * The routing is tests/js/routing.py: /echo/ (JSON echo), /text/ (verbatim text echo),
 * /streams/ (a demultiplexer with the streams "alpha" and "beta").
 *
 * The tests of a file run one after another, so a server restart never cuts another test short.
 */
"use strict";

const assert = require("node:assert/strict");
const { describe, test } = require("node:test");

const {
  Collector,
  capturingConsole,
  controlServer,
  delay,
  errorWithCode,
  loadBridge,
  nextEvent,
} = require("./helpers.js");

const { WebSocketBridge, ReconnectingSocket } = loadBridge();

const BASE = process.env.BRIDGE_WS_BASE;
// Quick reconnects, so a restart is noticed within a fraction of a second.
const FAST = { minReconnectionDelay: 50, maxReconnectionDelay: 300, connectionTimeout: 3000 };
const WAIT = 8000;

/* A bridge on `path` with its listen() messages collected; resolves once it is open. */
async function openBridge(path, options = FAST) {
  const bridge = new WebSocketBridge();
  const messages = new Collector(`listen() on ${path}`);
  bridge.listen(messages.push);
  bridge.connect(`${BASE}${path}`, undefined, options);
  await nextEvent(bridge.socket, "open", WAIT);
  return { bridge, messages };
}

describe("against a live server", { skip: !BASE && "BRIDGE_WS_BASE is not set: run through pytest" }, () => {
  test("connect, send and listen: a round trip through the worker", async () => {
    const { bridge, messages } = await openBridge("/echo/");
    try {
      bridge.send({ n: 1, text: "héllo" });
      assert.deepEqual(await messages.waitFor(1, WAIT), [[{ echo: { n: 1, text: "héllo" } }, null]]);
    } finally {
      bridge.close();
    }
  });

  test("sends made before the socket opens are delivered once it does, in order", async () => {
    const bridge = new WebSocketBridge();
    const messages = new Collector("listen()");
    bridge.listen(messages.push);
    for (let n = 1; n <= 5; n += 1) bridge.send({ n });
    assert.equal(bridge.queuedFrames.length, 5);
    bridge.connect(`${BASE}/echo/`, undefined, FAST);
    try {
      const echoed = await messages.waitFor(5, WAIT);
      assert.deepEqual(echoed.map(([message]) => message.echo.n), [1, 2, 3, 4, 5]);
      assert.deepEqual(bridge.queuedFrames, []);
    } finally {
      bridge.close();
    }
  });

  test("demultiplex(): each stream's frames go to its own callback, none to listen()", async () => {
    const bridge = new WebSocketBridge();
    const alpha = new Collector("alpha");
    const beta = new Collector("beta");
    const others = new Collector("listen()");
    bridge.connect(`${BASE}/streams/`, undefined, FAST);
    bridge.listen(others.push);
    bridge.demultiplex("alpha", alpha.push);
    bridge.demultiplex("beta", beta.push);
    try {
      // The demultiplexer's consumers greet on connect, each on its own stream.
      assert.deepEqual(await alpha.waitFor(1, WAIT), [[{ hello: "alpha" }, "alpha"]]);
      assert.deepEqual(await beta.waitFor(1, WAIT), [[{ hello: "beta" }, "beta"]]);
      // stream(name).send() reaches the server as a multiplexed frame: the named consumer answers.
      bridge.stream("beta").send({ n: 2 });
      bridge.stream("alpha").send({ n: 3 });
      assert.deepEqual((await beta.waitFor(2, WAIT))[1], [{ consumer: "beta", got: { n: 2 } }, "beta"]);
      assert.deepEqual((await alpha.waitFor(2, WAIT))[1], [{ consumer: "alpha", got: { n: 3 } }, "alpha"]);
      assert.deepEqual(others.items, []);
    } finally {
      bridge.close();
    }
  });

  test("frames are routed as Channels 1.1's client did", async () => {
    // /text/ sends back each frame as it came, so the server sends exactly these.
    const frames = [
      '{"stream": "gamma", "payload": {"x": 1}}', // no demultiplex() for gamma: dropped
      '{"stream": "alpha"}', // a stream frame without payload: alpha gets undefined
      "not json", // no callback; reported on the console
      "null",
      "[1, 2]",
      '{"last": true}',
    ];
    const { bridge, messages } = await openBridge("/text/");
    const alpha = new Collector("alpha");
    const raw = new Collector("socket message listener");
    bridge.demultiplex("alpha", alpha.push);
    bridge.socket.addEventListener("message", (event) => raw.push(event.data));
    try {
      const errors = await capturingConsole("error", async () => {
        for (const frame of frames) bridge.socket.send(frame);
        await raw.waitFor(frames.length, WAIT);
      });
      assert.deepEqual(raw.items, frames);
      assert.deepEqual(messages.items, [[null, null], [[1, 2], null], [{ last: true }, null]]);
      assert.deepEqual(alpha.items, [[undefined, "alpha"]]);
      assert.equal(errors.length, 1);
      assert.match(errors[0][0], /not JSON reached no callback: "not json"/);
    } finally {
      bridge.close();
    }
  });

  for (const how of ["stop", "kill"]) {
    test(`reconnects by itself after the server is ${how === "stop" ? "stopped" : "killed"} and started again`, async () => {
      const { bridge, messages } = await openBridge("/echo/");
      const socket = bridge.socket;
      const opens = new Collector("open listener added once");
      const onmessages = new Collector("onmessage set once");
      socket.addEventListener("open", opens.push);
      socket.onmessage = (event) => onmessages.push(JSON.parse(event.data));
      try {
        bridge.send({ before: true });
        await messages.waitFor(1, WAIT);

        const closed = nextEvent(socket, "close", WAIT);
        await controlServer(how);
        const closeEvent = await closed;
        if (how === "stop") assert.equal(closeEvent.code, 1001); // the server going away
        assert.notEqual(socket.readyState, ReconnectingSocket.OPEN);
        // While the server is down, sends wait in the queue.
        for (let n = 1; n <= 3; n += 1) bridge.send({ n });
        assert.equal(bridge.queuedFrames.length, 3);

        const started = performance.now();
        await controlServer("start");
        await opens.waitFor(1, WAIT);
        // At most maxReconnectionDelay (300 ms) plus a handshake through the worker; the bound
        // leaves room for a loaded machine.
        const reconnectMs = performance.now() - started;
        assert.ok(reconnectMs < 5000, `reconnected ${reconnectMs} ms after the server was back`);

        assert.equal(bridge.socket, socket);
        const echoed = await messages.waitFor(4, WAIT);
        assert.deepEqual(echoed.slice(1).map(([message]) => message.echo.n), [1, 2, 3]);
        // The handler set on bridge.socket before the restart saw the frames after it.
        assert.deepEqual((await onmessages.waitFor(4, WAIT)).map((message) => message.echo),
          [{ before: true }, { n: 1 }, { n: 2 }, { n: 3 }]);
      } finally {
        bridge.close();
      }
    });
  }

  test("close() stops reconnecting", async () => {
    const { bridge } = await openBridge("/echo/", { ...FAST, maxReconnectionDelay: 50 });
    const opens = new Collector("open after close()");
    const closed = nextEvent(bridge.socket, "close", WAIT);
    bridge.close();
    const closeEvent = await closed;
    assert.equal(closeEvent.code, 1000);
    bridge.socket.addEventListener("open", opens.push);
    await delay(500); // ten times the longest reconnect delay: a reconnect would show
    assert.deepEqual(opens.items, []);
    assert.equal(bridge.socket.readyState, ReconnectingSocket.CLOSED);
  });

  test("maxRetries against a stopped server: gives up, and a later connect() works again", async () => {
    await controlServer("stop");
    const bridge = new WebSocketBridge();
    const closes = new Collector("close events");
    try {
      bridge.connect(`${BASE}/echo/`, undefined, { ...FAST, maxRetries: 2 });
      bridge.socket.addEventListener("close", closes.push);
      await errorWithCode(bridge.socket, "EHOSTDOWN", WAIT);
      assert.equal(closes.items.length, 3); // the first attempt and two retries
    } finally {
      await controlServer("start");
    }
    const messages = new Collector("listen() after a new connect()");
    bridge.listen(messages.push);
    bridge.send({ again: true });
    bridge.connect(`${BASE}/echo/`, undefined, FAST);
    try {
      assert.deepEqual(await messages.waitFor(1, WAIT), [[{ echo: { again: true } }, null]]);
    } finally {
      bridge.close();
    }
  });
});
