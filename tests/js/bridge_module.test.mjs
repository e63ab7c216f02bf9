/*
 * websocketbridge.mjs: the ES module entry gives the same classes as the classic script, by
 * name and as the default export, and a bridge made through it works.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";

import DefaultBridge, { ReconnectingSocket, WebSocketBridge } from "../../channels/static/channels/js/websocketbridge.mjs";

const require = createRequire(import.meta.url);
const { fakeWebSocketClass } = require("./helpers.js");

test("the module exports WebSocketBridge by name and as default", () => {
  assert.equal(typeof WebSocketBridge, "function");
  assert.equal(DefaultBridge, WebSocketBridge);
  assert.equal(typeof ReconnectingSocket, "function");
});

test("the module and the classic script are one and the same code", () => {
  const viaRequire = require("../../channels/static/channels/js/websocketbridge.js");
  assert.equal(viaRequire.WebSocketBridge, WebSocketBridge);
  assert.equal(globalThis.channels.WebSocketBridge, WebSocketBridge);
});

test("a bridge imported as a module sends and dispatches", () => {
  const FakeWebSocket = fakeWebSocketClass();
  const bridge = new WebSocketBridge({ constructor: FakeWebSocket });
  const received = [];
  bridge.listen((message, stream) => received.push([message, stream]));
  bridge.send({ queued: true });
  bridge.connect("ws://127.0.0.1:1/ws/");
  const ws = FakeWebSocket.instances[0];
  ws.serverOpen();
  ws.serverMessage('{"hello": "module"}');
  assert.deepEqual(ws.sent, ['{"queued":true}']);
  assert.deepEqual(received, [[{ hello: "module" }, null]]);
  bridge.close();
});

test("the classic script also runs as module code, as a browser evaluates it under the .mjs", async () => {
  // Module code is strict, has no `module` and no `this`: the file must still publish itself.
  const source = readFileSync(new URL("../../channels/static/channels/js/websocketbridge.js", import.meta.url), "utf8");
  const saved = globalThis.channels;
  delete globalThis.channels;
  try {
    await import(`data:text/javascript,${encodeURIComponent(source)}`);
    assert.equal(typeof globalThis.channels.WebSocketBridge, "function");
    assert.notEqual(globalThis.channels.WebSocketBridge, WebSocketBridge); // a second evaluation
  } finally {
    globalThis.channels = saved;
  }
});
