// A js-libp2p peer (TCP + Noise + yamux, optional pnet) that noloco's interop tests and
// throughput benchmark talk to. Run with `node --import ./polyfill.mjs node.mjs <mode> ...`.
//
//   listen [--psk FILE] [--exit-after S] [--no-monitor 1] [--relay 1] [--via RELAY_MULTIADDR]
//       Listens on 127.0.0.1 (port 0), prints its full multiaddr (with /p2p/<id>) as the first
//       stdout line, serves identify, ping and the bench sink, and prints one line per event:
//         identified {json}      identify result of a peer that connected to us
//       --relay 1: also a circuit relay v2 server (js-libp2p's default limits).
//       --via: reserves on that relay (circuit relay v2) and prints, once reachable through it,
//         relayed <relay>/p2p-circuit/p2p/<id>
//       --host IP: bind this address instead of 127.0.0.1 (an interop network namespace's).
//       --autonat 1: also an AutoNAT v1 server (@libp2p/autonat, js-libp2p's defaults).
//       --dcutr 1: also runs DCUtR (@libp2p/dcutr): upgrades relayed connections it accepts.
//       Prints `direct <peerId> <remoteAddr>` for every connection that does not run through a
//       relay, once a relayed connection to that peer was seen (the hole punch's result).
//       Exits by itself after --exit-after seconds (default 120) so it can never be left behind.
//   ping <multiaddr> [--count N] [--psk FILE] [--timeout S] [--host IP --dcutr 1 --wait-direct S]
//       With --dcutr 1 it also listens on --host (DCUtR needs an address to offer) and, with
//       --wait-direct S, waits up to S seconds after the relayed dial for a direct connection
//       to the peer, prints `direct <remoteAddr>` and pings over it (exit 1 if none came).
//       Dials, runs identify and N pings (one stream each, as js-libp2p does), prints
//         identify {json}        the remote's peerId/agentVersion/protocolVersion/protocols/listenAddrs
//         ping <i> rtt=<ms>ms
//       and exits 0, or prints `error: <reason>` to stderr and exits 1.
//   bench-send <multiaddr> --bytes N [--chunk B] [--psk FILE] [--timeout S] [--no-monitor 1]
//       Opens one /noloco/bench/1.0.0 stream, writes N bytes, half-closes, waits for the
//       receiver's 8-byte big-endian count, prints
//         bench bytes=N seconds=S MBps=R sender_cpu_s=C
//       (the listener prints `bench-recv bytes=N cpu_s=C` for its side).
//   autonat-ask <multiaddr> --dial-back self|closed|other-ip|garbage|foreign-peer [--timeout S]
//       Listens on 127.0.0.1, connects to the peer, sends one AutoNAT v1 DIAL request (encoded
//       with @libp2p/autonat's own protobuf codec) naming our listen address (self), a closed
//       port on our IP (closed) or our port on 127.0.0.2, an IP the request does not come from
//       (other-ip), or sends a bad request (garbage: no protobuf; foreign-peer: in the name of
//       the peer it asks), and prints the answer:
//         autonat status=<OK|E_DIAL_ERROR|...> addr=<multiaddr|none> text=<status text>
//       (js-libp2p's own AutoNAT client never asks about loopback addresses, so the request is
//       built here; the server side of @libp2p/autonat is what `listen --autonat 1` runs.)
//
// Only loopback addresses and the interop network namespaces' (tests/interop/netns.sh:
// 11.13.0.0/24 and 10.13.0.0/16) are used; ping refuses anything else.
import { readFileSync } from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import { createLibp2p } from 'libp2p'

const BENCH_PROTOCOL = '/noloco/bench/1.0.0'
const AUTONAT_PROTOCOL = '/libp2p/autonat/1.0.0'

// @libp2p/autonat's generated protobuf codec (not exported by the package, so by path).
async function autonatMessage () {
  const here = dirname(fileURLToPath(import.meta.url))
  return (await import(pathToFileURL(join(here, 'node_modules/@libp2p/autonat/dist/src/pb/index.js')).href)).Message
}

function fail (reason) {
  process.stderr.write(`error: ${reason}\n`)
  process.exit(1)
}

function parseArgs (argv) {
  const positional = []
  const flags = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const value = argv[i + 1]
      if (value === undefined) fail(`flag ${a} needs a value`)
      flags[a.slice(2)] = value
      i++
    } else {
      positional.push(a)
    }
  }
  return { positional, flags }
}

function positiveNumber (flags, name, fallback) {
  if (flags[name] === undefined) return fallback
  const n = Number(flags[name])
  if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number, got ${flags[name]}`)
  return n
}

async function makeNode ({ listen, pskFile, noMonitor, relay, via, host = '127.0.0.1', autonat = false, holePunch = false, identifyOnOpen }) {
  const listenAddrs = listen ? [`/ip4/${host}/tcp/0`] : []
  // js-libp2p announces a public address (an interop namespace's 11.13.0.x) only once AutoNAT
  // verified it; an operator's declared address (appendAnnounce) counts as verified. So a
  // public node listens on a port chosen here and declares that address.
  let announce = []
  if (listen && !host.startsWith('127.')) {
    listenAddrs[0] = `/ip4/${host}/tcp/${await closedPort(host)}`
    announce = [listenAddrs[0]]
  }
  if (via !== undefined) listenAddrs.push(`${via}/p2p-circuit`)
  const options = {
    addresses: { listen: listenAddrs, appendAnnounce: announce },
    // Every js peer can dial /p2p-circuit addresses (circuit relay v2 client).
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    // The one change from js-libp2p defaults: js yamux credits receive window as frames arrive
    // (growing up to 16 MiB) but resets a stream whose unread buffer passes 4 MiB, so a bulk
    // receiver that falls behind (busy CPU) resets the stream. 32 MiB covers the largest window.
    streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: 32 * 1024 * 1024 } })],
    // The dialer runs identify itself (to report its errors); the listener identifies whoever
    // connects, as js-libp2p does by default.
    services: { identify: identify({ runOnConnectionOpen: identifyOnOpen ?? listen }), ping: ping() },
    nodeInfo: { userAgent: 'noloco-interop-js/1.0.0' }
  }
  // js-libp2p pings every connection each 10 s and aborts it when a pong is late (adaptive
  // timeout, 5 s minimum). The benchmark turns this off (--no-monitor 1) so that a saturated,
  // CPU-starved loopback run measures throughput rather than that timeout.
  if (noMonitor) options.connectionMonitor = { enabled: false }
  if (relay) options.services.relay = circuitRelayServer()
  if (autonat === '1') options.services.autonat = autoNAT()
  if (holePunch) options.services.dcutr = dcutr()
  if (pskFile !== undefined) {
    let psk
    try {
      psk = readFileSync(pskFile)
    } catch (err) {
      fail(`cannot read psk file ${pskFile}: ${err.message}`)
    }
    options.connectionProtector = preSharedKey({ psk: new Uint8Array(psk) })
  }
  return createLibp2p(options)
}

function identifyJson (result) {
  return JSON.stringify({
    peerId: result.peerId.toString(),
    agentVersion: result.agentVersion ?? null,
    protocolVersion: result.protocolVersion ?? null,
    protocols: [...(result.protocols ?? [])].sort(),
    listenAddrs: (result.listenAddrs ?? []).map(a => a.toString()),
    observedAddr: result.observedAddr?.toString() ?? null
  })
}

// The addresses tests/interop/netns.sh gives its namespaces (they exist nowhere else).
function inInteropNetns (component) {
  return component?.name === 'ip4' && (component.value.startsWith('11.13.0.') || component.value.startsWith('10.13.'))
}

function hostFlag (flags) {
  const host = flags.host ?? '127.0.0.1'
  const parsed = multiaddr(`/ip4/${host}`).getComponents()[0]
  if (!host.startsWith('127.') && !inInteropNetns(parsed)) fail(`--host ${host} is neither loopback nor an interop namespace address`)
  return host
}

const isRelayed = conn => conn.remoteAddr.toString().includes('/p2p-circuit')

// Prints `direct <peer> <addr>` for each direct connection to a peer we also reach through a
// relay: what a successful hole punch leaves behind.
function reportDirect (node) {
  const relayedPeers = new Set()
  node.addEventListener('connection:open', evt => {
    const conn = evt.detail
    const peer = conn.remotePeer.toString()
    if (isRelayed(conn)) {
      relayedPeers.add(peer)
      process.stdout.write(`relayed-connection ${peer}\n`)
    } else if (relayedPeers.has(peer)) {
      process.stdout.write(`direct ${peer} ${conn.remoteAddr.toString()}\n`)
    }
  })
}

function loopbackTarget (text) {
  let ma
  try {
    ma = multiaddr(text)
  } catch (err) {
    fail(`bad multiaddr ${text}: ${err.message}`)
  }
  const first = ma.getComponents()[0]
  const host = first?.value
  const loopback = (first?.name === 'ip4' && host.startsWith('127.')) || (first?.name === 'ip6' && host === '::1')
  if (!loopback && !inInteropNetns(first)) fail(`refusing non-loopback address ${text}`)
  if (ma.getComponents().find(c => c.name === 'p2p') === undefined) fail(`multiaddr needs a /p2p/<id> part: ${text}`)
  return ma
}

// Bench sink: count bytes until the sender half-closes, reply with the count (8 bytes, big-endian).
// Prints `bench-recv bytes=N cpu_s=C` (this process's CPU while receiving) for the benchmark.
async function handleBench (stream) {
  const cpuStart = process.cpuUsage()
  let total = 0n
  for await (const chunk of stream) total += BigInt(chunk.byteLength)
  const reply = new Uint8Array(8)
  new DataView(reply.buffer).setBigUint64(0, total)
  stream.send(reply)
  await stream.close()
  const cpu = process.cpuUsage(cpuStart)
  process.stdout.write(`bench-recv bytes=${total} cpu_s=${((cpu.user + cpu.system) / 1e6).toFixed(3)}\n`)
}

async function runListen (flags) {
  const exitAfter = positiveNumber(flags, 'exit-after', 120)
  const via = flags.via === undefined ? undefined : loopbackTarget(flags.via).toString()
  const node = await makeNode({
    listen: true,
    pskFile: flags.psk,
    noMonitor: flags['no-monitor'] === '1',
    relay: flags.relay === '1',
    via,
    host: hostFlag(flags),
    autonat: flags.autonat,
    holePunch: flags.dcutr === '1'
  })
  reportDirect(node)
  if (flags.autonat === 'fresh') await node.handle(AUTONAT_PROTOCOL, stream => serveAutonatFresh(node, stream, flags), { maxInboundStreams: 4 })
  await node.handle(BENCH_PROTOCOL, handleBench)
  node.addEventListener('peer:identify', evt => {
    process.stdout.write(`identified ${identifyJson(evt.detail)}\n`)
  })
  const addrs = node.getMultiaddrs().map(a => a.toString())
  if (addrs.length === 0) fail('no listen address')
  process.stdout.write(`${addrs[0]}\n`)
  if (via !== undefined) {
    // The reservation is made while starting; print the circuit address once it is ours.
    const printRelayed = () => {
      const relayed = node.getMultiaddrs().map(a => a.toString()).find(a => a.includes('/p2p-circuit'))
      if (relayed === undefined) return false
      process.stdout.write(`relayed ${relayed}\n`)
      return true
    }
    if (!printRelayed()) {
      const onUpdate = () => { if (printRelayed()) node.removeEventListener('self:peer:update', onUpdate) }
      node.addEventListener('self:peer:update', onUpdate)
    }
  }
  const stop = async () => { await node.stop(); process.exit(0) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  setTimeout(() => { process.stderr.write(`listen: exiting after ${exitAfter}s\n`); process.exit(0) }, exitAfter * 1000).unref()
  // Keep the process alive until a signal or the exit timer; the timer above is unref'd so a
  // separate ref'd one holds the loop open.
  setInterval(() => {}, 1 << 30)
}

async function withDeadline (seconds, what, fn) {
  const timer = setTimeout(() => fail(`${what} timed out after ${seconds}s`), seconds * 1000)
  try {
    return await fn()
  } finally {
    clearTimeout(timer)
  }
}

async function runPing (positional, flags) {
  if (positional.length !== 1) fail('usage: ping <multiaddr> [--count N] [--psk FILE] [--timeout S]')
  const target = loopbackTarget(positional[0])
  const count = positiveNumber(flags, 'count', 1)
  const timeout = positiveNumber(flags, 'timeout', 20)
  const holePunch = flags.dcutr === '1'
  const waitDirect = positiveNumber(flags, 'wait-direct', 0)
  // The pinger runs identify itself, once, on the connection it pings over.
  const node = await makeNode({ listen: holePunch, pskFile: flags.psk, host: hostFlag(flags), holePunch, identifyOnOpen: false })
  const targetPeer = target.getComponents().findLast(c => c.name === 'p2p').value
  const direct = Promise.withResolvers()
  node.addEventListener('connection:open', evt => {
    if (evt.detail.remotePeer.toString() === targetPeer && !isRelayed(evt.detail)) direct.resolve(evt.detail)
  })
  await withDeadline(timeout, 'ping', async () => {
    let conn
    try {
      conn = await node.dial(target, { signal: AbortSignal.timeout(timeout * 1000) })
    } catch (err) {
      fail(`dial ${target}: ${err.name}: ${err.message}`)
    }
    if (waitDirect > 0) {
      const timer = setTimeout(() => fail(`no direct connection to ${targetPeer} within ${waitDirect}s`), waitDirect * 1000)
      conn = await direct.promise
      clearTimeout(timer)
      process.stdout.write(`direct ${conn.remoteAddr.toString()}\n`)
    }
    try {
      const result = await node.services.identify.identify(conn)
      process.stdout.write(`identify ${identifyJson(result)}\n`)
    } catch (err) {
      fail(`identify: ${err.name}: ${err.message}`)
    }
    for (let i = 0; i < count; i++) {
      try {
        const rtt = await node.services.ping.ping(target)
        process.stdout.write(`ping ${i} rtt=${rtt}ms\n`)
      } catch (err) {
        fail(`ping ${i}: ${err.name}: ${err.message}`)
      }
    }
  })
  await node.stop()
  process.exit(0)
}

async function runBenchSend (positional, flags) {
  if (positional.length !== 1) fail('usage: bench-send <multiaddr> --bytes N [--chunk B] [--psk FILE]')
  const target = loopbackTarget(positional[0])
  const bytes = positiveNumber(flags, 'bytes', 256 * 1024 * 1024)
  const chunkSize = positiveNumber(flags, 'chunk', 64 * 1024)
  const timeout = positiveNumber(flags, 'timeout', 300)
  const node = await makeNode({ listen: false, pskFile: flags.psk, noMonitor: flags['no-monitor'] === '1' })
  await withDeadline(timeout, 'bench-send', async () => {
    const conn = await node.dial(target)
    const stream = await conn.newStream(BENCH_PROTOCOL)
    const chunk = new Uint8Array(chunkSize).fill(0x5a)
    const cpuStart = process.cpuUsage()
    const start = process.hrtime.bigint()
    const reply = (async () => {
      const parts = []
      for await (const c of stream) parts.push(c.subarray())
      return Buffer.concat(parts)
    })()
    let sent = 0
    while (sent < bytes) {
      const n = Math.min(chunkSize, bytes - sent)
      const data = n === chunkSize ? chunk : chunk.subarray(0, n)
      if (!stream.send(data)) {
        await new Promise((resolve, reject) => {
          stream.addEventListener('drain', resolve, { once: true })
          stream.addEventListener('close', (evt) => reject(new Error(`stream closed while sending: ${evt.error?.name}: ${evt.error?.message}`)), { once: true })
        })
      }
      sent += n
    }
    await stream.close()
    const ack = await reply
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const cpu = process.cpuUsage(cpuStart)
    if (ack.length !== 8) fail(`bench ack has ${ack.length} bytes, want 8`)
    const counted = new DataView(ack.buffer, ack.byteOffset, 8).getBigUint64(0)
    if (counted !== BigInt(bytes)) fail(`receiver counted ${counted} bytes, sent ${bytes}`)
    const cpuSeconds = (cpu.user + cpu.system) / 1e6
    process.stdout.write(`bench bytes=${bytes} seconds=${seconds.toFixed(3)} MBps=${(bytes / 1e6 / seconds).toFixed(1)} sender_cpu_s=${cpuSeconds.toFixed(3)}\n`)
  })
  await node.stop()
  process.exit(0)
}

// A port on `host` that nothing listens on (bound, then released).
function closedPort (host) {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

// One <uvarint length><protobuf> message from a js-libp2p 3.x stream (an async iterable of
// Uint8ArrayList chunks), at most `max` bytes.
async function readLengthPrefixed (stream, max) {
  let buf = new Uint8Array(0)
  for await (const chunk of stream) {
    const bytes = chunk.subarray()
    const next = new Uint8Array(buf.length + bytes.length)
    next.set(buf)
    next.set(bytes, buf.length)
    buf = next
    let len = 0
    let shift = 0
    let i = 0
    for (; i < buf.length && i < 5; i++) {
      len |= (buf[i] & 0x7f) << shift
      shift += 7
      if ((buf[i] & 0x80) === 0) break
    }
    if (i === buf.length) continue
    if (len > max) throw new Error(`message of ${len} bytes exceeds ${max}`)
    if (buf.length >= i + 1 + len) return buf.subarray(i + 1, i + 1 + len)
  }
  throw new Error('stream ended before a whole message')
}

function uvarint (n) {
  const out = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return Uint8Array.from(out)
}

// `listen --autonat fresh`: an AutoNAT v1 server built from @libp2p/autonat's codec with the
// checks of its server (addresses on the requester's observed IP, not private, at most 4),
// that dials back from a second, fresh js node. @libp2p/autonat's own server (--autonat 1)
// dials back through the connection manager, which hands back the connection the request came
// on, and then closes it, so a directly connected requester never gets an answer.
async function serveAutonatFresh (node, stream, flags) {
  const Message = await autonatMessage()
  const conn = node.getConnections().find(c => c.streams.includes(stream))
  const answer = async (dialResponse) => {
    const body = Message.encode({ type: Message.MessageType.DIAL_RESPONSE, dialResponse })
    stream.send(uvarint(body.length))
    stream.send(body)
    await stream.close()
  }
  try {
    const request = Message.decode(await readLengthPrefixed(stream, 8192))
    const peer = request.dial?.peer
    if (conn === undefined || peer?.id == null || !peerIdFromMultihash(Digest.decode(peer.id)).equals(conn.remotePeer)) {
      return await answer({ status: Message.ResponseStatus.E_BAD_REQUEST, statusText: 'bad or foreign peer id' })
    }
    const observed = conn.remoteAddr.getComponents()[0]?.value
    const addrs = peer.addrs.map(b => multiaddr(b)).filter(ma => {
      const c = ma.getComponents()
      return c[0]?.name === 'ip4' && c[0].value === observed && c[1]?.name === 'tcp' && !isPrivate(ma)
    }).slice(0, 4)
    if (addrs.length === 0) return await answer({ status: Message.ResponseStatus.E_DIAL_REFUSED, statusText: 'no dialable addresses' })
    const dialer = await makeNode({ listen: false, host: hostFlag(flags) })
    try {
      for (const ma of addrs) {
        try {
          const back = await dialer.dial(ma.encapsulate(`/p2p/${conn.remotePeer}`), { signal: AbortSignal.timeout(10_000) })
          await back.close()
          return await answer({ status: Message.ResponseStatus.OK, addr: ma.bytes })
        } catch {}
      }
      return await answer({ status: Message.ResponseStatus.E_DIAL_ERROR, statusText: 'dial back failed' })
    } finally {
      await dialer.stop()
    }
  } catch (err) {
    process.stderr.write(`autonat fresh: ${err.name}: ${err.message}\n`)
    stream.abort(err)
  }
}

async function runAutonatAsk (positional, flags) {
  if (positional.length !== 1) fail('usage: autonat-ask <multiaddr> --dial-back self|closed|other-ip [--timeout S]')
  const target = loopbackTarget(positional[0])
  const timeout = positiveNumber(flags, 'timeout', 30)
  const kind = flags['dial-back'] ?? 'self'
  const Message = await autonatMessage()
  const host = hostFlag(flags)
  const node = await makeNode({ listen: true, host })
  const own = node.getMultiaddrs()[0]
  const ownPort = Number(own.getComponents().find(c => c.name === 'tcp').value)
  // Besides the three addresses, two bad requests: bytes that are no protobuf message, and a
  // request in the name of another peer (the target's own id).
  const ports = {
    self: [host, ownPort],
    closed: [host, await closedPort(host)],
    'other-ip': ['127.0.0.2', ownPort],
    garbage: [host, ownPort],
    'foreign-peer': [host, ownPort]
  }
  if (ports[kind] === undefined) fail(`--dial-back must be self, closed, other-ip, garbage or foreign-peer, got ${kind}`)
  const [ip, port] = ports[kind]
  const targetId = target.getComponents().findLast(c => c.name === 'p2p').value
  await withDeadline(timeout, 'autonat-ask', async () => {
    const conn = await node.dial(target)
    const stream = await conn.newStream(AUTONAT_PROTOCOL)
    const id = kind === 'foreign-peer' ? conn.remotePeer.toMultihash().bytes : node.peerId.toMultihash().bytes
    const body = kind === 'garbage'
      ? Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x12, 0x7f, 0x01])
      : Message.encode({ type: Message.MessageType.DIAL, dial: { peer: { id, addrs: [multiaddr(`/ip4/${ip}/tcp/${port}`).bytes] } } })
    if (kind === 'foreign-peer' && conn.remotePeer.toString() !== targetId) fail('connected to the wrong peer')
    stream.send(uvarint(body.length))
    stream.send(body)
    await stream.close()
    const answer = Message.decode(await readLengthPrefixed(stream, 8192))
    const r = answer.dialResponse
    if (answer.type !== Message.MessageType.DIAL_RESPONSE || r == null) fail(`not a DIAL_RESPONSE: ${JSON.stringify(answer)}`)
    const addr = r.addr == null || r.addr.length === 0 ? 'none' : multiaddr(r.addr).toString()
    process.stdout.write(`autonat status=${r.status} addr=${addr} asked=/ip4/${ip}/tcp/${port} text=${r.statusText ?? ''}\n`)
  })
  await node.stop()
  process.exit(0)
}

const [mode, ...rest] = process.argv.slice(2)
const { positional, flags } = parseArgs(rest)
const modes = {
  listen: () => runListen(flags),
  ping: () => runPing(positional, flags),
  'bench-send': () => runBenchSend(positional, flags),
  'autonat-ask': () => runAutonatAsk(positional, flags)
}
if (modes[mode] === undefined) fail(`unknown mode ${mode ?? '(none)'}; use listen, ping, bench-send or autonat-ask`)
modes[mode]().catch(err => fail(`${err.name}: ${err.message}`))
