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
//       Exits by itself after --exit-after seconds (default 120) so it can never be left behind.
//   ping <multiaddr> [--count N] [--psk FILE] [--timeout S]
//       Dials, runs identify and N pings (one stream each, as js-libp2p does), prints
//         identify {json}        the remote's peerId/agentVersion/protocolVersion/protocols/listenAddrs
//         ping <i> rtt=<ms>ms
//       and exits 0, or prints `error: <reason>` to stderr and exits 1.
//   bench-send <multiaddr> --bytes N [--chunk B] [--psk FILE] [--timeout S] [--no-monitor 1]
//       Opens one /noloco/bench/1.0.0 stream, writes N bytes, half-closes, waits for the
//       receiver's 8-byte big-endian count, prints
//         bench bytes=N seconds=S MBps=R sender_cpu_s=C
//       (the listener prints `bench-recv bytes=N cpu_s=C` for its side).
//
// Only loopback addresses are used: the listener binds 127.0.0.1 and ping refuses anything else.
import { readFileSync } from 'node:fs'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const BENCH_PROTOCOL = '/noloco/bench/1.0.0'

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

async function makeNode ({ listen, pskFile, noMonitor, relay, via }) {
  const listenAddrs = listen ? ['/ip4/127.0.0.1/tcp/0'] : []
  if (via !== undefined) listenAddrs.push(`${via}/p2p-circuit`)
  const options = {
    addresses: { listen: listenAddrs },
    // Every js peer can dial /p2p-circuit addresses (circuit relay v2 client).
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    // The one change from js-libp2p defaults: js yamux credits receive window as frames arrive
    // (growing up to 16 MiB) but resets a stream whose unread buffer passes 4 MiB, so a bulk
    // receiver that falls behind (busy CPU) resets the stream. 32 MiB covers the largest window.
    streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: 32 * 1024 * 1024 } })],
    // The dialer runs identify itself (to report its errors); the listener identifies whoever
    // connects, as js-libp2p does by default.
    services: { identify: identify({ runOnConnectionOpen: listen }), ping: ping() },
    nodeInfo: { userAgent: 'noloco-interop-js/1.0.0' }
  }
  // js-libp2p pings every connection each 10 s and aborts it when a pong is late (adaptive
  // timeout, 5 s minimum). The benchmark turns this off (--no-monitor 1) so that a saturated,
  // CPU-starved loopback run measures throughput rather than that timeout.
  if (noMonitor) options.connectionMonitor = { enabled: false }
  if (relay) options.services.relay = circuitRelayServer()
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
  if (!loopback) fail(`refusing non-loopback address ${text}`)
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
  const node = await makeNode({ listen: true, pskFile: flags.psk, noMonitor: flags['no-monitor'] === '1', relay: flags.relay === '1', via })
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
  const node = await makeNode({ listen: false, pskFile: flags.psk })
  await withDeadline(timeout, 'ping', async () => {
    let conn
    try {
      conn = await node.dial(target, { signal: AbortSignal.timeout(timeout * 1000) })
    } catch (err) {
      fail(`dial ${target}: ${err.name}: ${err.message}`)
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

const [mode, ...rest] = process.argv.slice(2)
const { positional, flags } = parseArgs(rest)
const modes = {
  listen: () => runListen(flags),
  ping: () => runPing(positional, flags),
  'bench-send': () => runBenchSend(positional, flags)
}
if (modes[mode] === undefined) fail(`unknown mode ${mode ?? '(none)'}; use listen, ping or bench-send`)
modes[mode]().catch(err => fail(`${err.name}: ${err.message}`))
