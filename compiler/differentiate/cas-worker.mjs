// The CAS (nerdamer-prime) in a worker thread, so that a call can be stopped: cas.ts posts
// { id, expr, v } on the port it passed in, this answers { id, answer } or { id, error } and then
// stores the id in the shared signal cell and wakes the main thread, which waits on it with a
// deadline and terminates this worker when the deadline passes. Plain JavaScript: a worker does
// not inherit the TypeScript loader of the main thread.
import { workerData } from "node:worker_threads";
import nerdamer from "nerdamer-prime/all";

const { port, signal } = workerData;
const cell = new Int32Array(signal);

port.on("message", ({ id, expr, v }) => {
  let reply;
  try {
    reply = { id, answer: String(nerdamer.diff(expr, v).toString()) };
  } catch (e) {
    reply = { id, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply);
  Atomics.store(cell, 0, id);
  Atomics.notify(cell, 0);
});

// ready: nerdamer is loaded
Atomics.store(cell, 0, -1);
Atomics.notify(cell, 0);
