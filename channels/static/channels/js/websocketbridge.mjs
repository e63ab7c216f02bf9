/*
 * ES module entry of the channels WebSocketBridge:
 *
 *   import { WebSocketBridge } from "/static/channels/js/websocketbridge.mjs";
 *
 * websocketbridge.js is a classic script (it must keep working in a plain <script> tag), so it
 * cannot carry `export` statements; importing it for its side effect runs it once and it
 * publishes itself on the global object, where this module picks it up.
 */
import "./websocketbridge.js";

const { WebSocketBridge, ReconnectingSocket } = globalThis.channels;

export { WebSocketBridge, ReconnectingSocket };
export default WebSocketBridge;
