// A plain-JavaScript signaling client written from docs/signaling.md alone, used as
// a smoke test of the protocol from outside Rust. Uses only the standard WebSocket
// API (browsers; Node >= 22, or Node 20 with --experimental-websocket).
//
//   rtcplay-signal --bind 127.0.0.1:0          # prints its URL
//   node --experimental-websocket docs/signaling-smoke.mjs ws://127.0.0.1:PORT
//
// Exits 0 when every step behaved as documented, 1 otherwise.

const url = process.argv[2] ?? "ws://127.0.0.1:3536";
const room = `smoke-${Date.now()}`;

/** A client whose incoming messages can be awaited one by one. */
function open() {
  const ws = new WebSocket(url);
  const inbox = [];
  let waiting = null;
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data);
    if (waiting) { const w = waiting; waiting = null; w(msg); } else inbox.push(msg);
  };
  const next = () => new Promise((resolve, reject) => {
    if (inbox.length) return resolve(inbox.shift());
    const timer = setTimeout(() => reject(new Error("no message within 5 s")), 5000);
    waiting = (msg) => { clearTimeout(timer); resolve(msg); };
  });
  const send = (msg) => ws.send(JSON.stringify(msg));
  const ready = new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  return { ws, next, send, ready };
}

function expect(cond, what) {
  if (!cond) throw new Error(`expected ${what}`);
  console.log(`ok - ${what}`);
}

async function main() {
  const a = open(), b = open();
  await Promise.all([a.ready, b.ready]);

  a.send({ type: "join", version: 1, room, players: 2 });
  const wa = await a.next();
  expect(wa.type === "welcome" && wa.players === 2 && Array.isArray(wa.ice_servers), "welcome for a");

  b.send({ type: "join", version: 1, room, players: 2 });
  const wb = await b.next();
  expect(wb.type === "welcome" && wb.peer_id !== wa.peer_id, "welcome for b with its own id");
  const bj = await b.next();
  expect(bj.type === "peer_joined" && bj.peer_id === wa.peer_id, "b told about a");
  const aj = await a.next();
  expect(aj.type === "peer_joined" && aj.peer_id === wb.peer_id, "a told about b");
  const peers = [wa.peer_id, wb.peer_id].sort((x, y) => x - y);
  for (const [c, name] of [[a, "a"], [b, "b"]]) {
    const full = await c.next();
    expect(full.type === "room_full" && JSON.stringify(full.peers) === JSON.stringify(peers),
      `room_full for ${name}`);
  }

  // The higher id offers; the lower answers; a candidate and end_of_candidates follow.
  const [hi, lo, hiId, loId] = wa.peer_id > wb.peer_id ? [a, b, wa.peer_id, wb.peer_id]
                                                         : [b, a, wb.peer_id, wa.peer_id];
  hi.send({ type: "signal", to: loId, data: { kind: "offer", sdp: "v=0 offer" } });
  const off = await lo.next();
  expect(off.type === "signal" && off.from === hiId && off.data.kind === "offer", "offer relayed");
  lo.send({ type: "signal", to: hiId, data: { kind: "answer", sdp: "v=0 answer" } });
  lo.send({ type: "signal", to: hiId, data: { kind: "candidate", candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdp_mid: "0", sdp_mline_index: 0 } });
  lo.send({ type: "signal", to: hiId, data: { kind: "end_of_candidates" } });
  const kinds = [];
  for (let i = 0; i < 3; i++) kinds.push((await hi.next()).data.kind);
  expect(kinds.join() === "answer,candidate,end_of_candidates", "answer, candidate, end in order");

  a.send({ type: "ping" });
  expect((await a.next()).type === "pong", "pong");
  a.send({ type: "teleport" });
  const unk = await a.next();
  expect(unk.type === "error" && unk.code === "unknown_type", "unknown_type error");
  a.send({ type: "signal", to: 4242, data: { kind: "end_of_candidates" } });
  const up = await a.next();
  expect(up.type === "error" && up.code === "unknown_peer", "unknown_peer error");

  b.send({ type: "leave" });
  const left = await a.next();
  expect(left.type === "peer_left" && left.peer_id === wb.peer_id, "peer_left after leave");
  a.ws.close(); b.ws.close();
}

main().then(() => process.exit(0), (e) => { console.error(`not ok - ${e.message}`); process.exit(1); });
