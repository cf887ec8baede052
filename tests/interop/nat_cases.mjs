// AutoNAT v1 and DCUtR interop cases for interop_test.mjs (docs/interop.md, "NAT traversal").
//
// js-libp2p considers every RFC 1918, loopback and documentation address private: it never
// hole-punches to one, never dials one back for AutoNAT, and announces a public one only when
// declared (tools/interop/node.mjs). So, except for the first AutoNAT case (where js builds
// the request by hand and loopback is fine for our server), the cases run in network
// namespaces (netns.sh) with a "public" 11.13.0.0/24 and a NATed 10.13.1.0/24. They need root
// (ip netns, iptables) and exit 77 (skipped) without it.
import { execFileSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const JS_RELAY = '11.13.0.1'
const JS_PEER = '11.13.0.10'
const OURS_PUBLIC = '11.13.0.2'
const NAT_WAN = '11.13.0.3'
const OURS_NATED = '10.13.1.2'
const PING_COUNT = 3

export const NAT_CASES = {
  // js asks our AutoNAT server (loopback): dial back its listener (OK), a closed port
  // (E_DIAL_ERROR) and an address on an IP the request did not come from (E_DIAL_REFUSED); then
  // an undecodable request and one in another peer's name (both E_BAD_REQUEST).
  'autonat-js-asks-noloco': { netns: false },
  // Our client asks js (a js-libp2p node whose AutoNAT answers come from @libp2p/autonat's codec
  // and a fresh js dialer, see node.mjs --autonat fresh): public -> OK, behind NAT -> E_DIAL_ERROR.
  'autonat-noloco-asks-js-public': { netns: true },
  'autonat-noloco-asks-js-nated': { netns: true },
  // Our client against @libp2p/autonat's own server: it reuses the connection the request came
  // on for the dial back and closes it (docs/interop.md), so there is never an answer; we must
  // count no vote and stay up.
  'autonat-noloco-asks-js-libp2p-server': { netns: true },
  // DCUtR, through a js relay or ours. initiator: we are B (the relayed connection's listener,
  // public at 11.13.0.2) and js A dials us through the relay. responder: we are A, NATed at
  // 10.13.1.2, and dial js B through the relay.
  'dcutr-noloco-initiator': { netns: true, relay: 'js' },
  'dcutr-noloco-responder': { netns: true, relay: 'js' },
  'dcutr-noloco-initiator-noloco-relay': { netns: true, relay: 'noloco', base: 'dcutr-noloco-initiator' },
  'dcutr-noloco-responder-noloco-relay': { netns: true, relay: 'noloco', base: 'dcutr-noloco-responder' }
}

// h: the driver's helpers { start, waitForLine, describe, runBounded, finish, skip, onCleanup }.
export async function runNatCase (name, common, h) {
  const spec = NAT_CASES[name]
  const prefix = spec.netns ? setUpNetns(h) : null
  const inNs = (ns, argv) => (prefix === null ? argv : ['ip', 'netns', 'exec', `${prefix}-${ns}`, ...argv])
  const dir = resolve(common.interopDir)
  const js = (...args) => [process.execPath, '--import', pathToFileURL(join(dir, 'polyfill.mjs')).href, join(dir, 'node.mjs'), ...args]
  const ctx = { ...common, h, inNs, js, exitAfter: String(common.timeout * 2) }
  const run = {
    'autonat-js-asks-noloco': autonatJsAsksNoloco,
    'autonat-noloco-asks-js-public': c => autonatNolocoAsksJs(c, 'public'),
    'autonat-noloco-asks-js-nated': c => autonatNolocoAsksJs(c, 'nated'),
    'autonat-noloco-asks-js-libp2p-server': c => autonatNolocoAsksJs(c, 'js-server'),
    'dcutr-noloco-initiator': dcutrNolocoInitiator,
    'dcutr-noloco-responder': dcutrNolocoResponder
  }[spec.base ?? name]
  return run({ ...ctx, relay: spec.relay })
}

function setUpNetns (h) {
  if (process.getuid?.() !== 0) h.skip('network namespaces need root')
  for (const tool of ['ip', 'iptables']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    } catch {
      h.skip(`${tool} not installed`)
    }
  }
  const script = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'netns.sh')
  const prefix = `ix${process.pid}`
  h.onCleanup(() => execFileSync('sh', [script, 'down', prefix], { stdio: 'ignore' }))
  try {
    execFileSync('sh', [script, 'up', prefix], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    h.finish(false, `netns.sh up failed: ${err.stderr?.toString() ?? err.message}`)
  }
  return prefix
}

const alive = p => p.child.exitCode === null && p.child.signalCode === null

// Starts a process and waits for its first stdout line matching `re`; returns [proc, match].
async function startAndWait (c, argv, label, re, what) {
  const proc = c.h.start(argv, label)
  const line = await c.h.waitForLine(proc, re, c.timeout, what)
  if (line.error !== undefined) c.h.finish(false, `${line.error}\n${c.h.describe(proc)}`)
  return [proc, line.match]
}

const ADDR = /^(\/ip4\/\S+\/tcp\/\d+\/p2p\/\S+)$/
const RELAYED = /^relayed (\/ip4\/\S+\/p2p-circuit\/p2p\/\S+)$/

async function autonatJsAsksNoloco (c) {
  const [server, addr] = await startAndWait(c, [c.noloco, 'listen', '--autonat'], 'noloco autonat server', ADDR, 'listen address')
  // Then two malformed requests, which must be refused without harm to the server.
  const want = { self: 'OK', closed: 'E_DIAL_ERROR', 'other-ip': 'E_DIAL_REFUSED', garbage: 'E_BAD_REQUEST', 'foreign-peer': 'E_BAD_REQUEST' }
  const seen = []
  for (const [kind, status] of Object.entries(want)) {
    const asker = c.h.start(c.js('autonat-ask', addr[1], '--dial-back', kind, '--timeout', String(c.timeout / 2)), `js autonat-ask ${kind}`)
    const r = await c.h.runBounded(asker, c.timeout)
    const all = () => [server, asker].map(c.h.describe).join('\n')
    if (r.code !== 0) c.h.finish(false, `js autonat-ask ${kind}: exit ${r.code} (signal ${r.signal})\n${all()}`)
    const m = asker.stdout.match(/^autonat status=(\S+) addr=(\S+) asked=(\S+) text=(.*)$/m)
    if (m === null) c.h.finish(false, `js autonat-ask ${kind}: no answer line\n${all()}`)
    if (m[1] !== status) c.h.finish(false, `js autonat-ask ${kind}: status ${m[1]}, want ${status}\n${all()}`)
    // OK must name the address we reached, which is the one asked; refusals name none.
    if (status === 'OK' && m[2] !== m[3]) c.h.finish(false, `OK names ${m[2]}, asked ${m[3]}\n${all()}`)
    if (status !== 'OK' && m[2] !== 'none') c.h.finish(false, `${status} names an address ${m[2]}\n${all()}`)
    if (!alive(server)) c.h.finish(false, `our server died\n${all()}`)
    seen.push(`${kind}->${m[1]}`)
  }
  c.h.finish(true, `js asked our AutoNAT server: ${seen.join(', ')}`)
}

async function autonatNolocoAsksJs (c, variant) {
  const [jsServer, jsAddr] = await startAndWait(c,
    c.inNs('pub', c.js('listen', '--host', JS_PEER, '--autonat', variant === 'js-server' ? '1' : 'fresh', '--exit-after', c.exitAfter)),
    'js autonat server', ADDR, 'listen address')
  const nated = variant === 'nated'
  const [ns, ip] = nated ? ['n', OURS_NATED] : ['o', OURS_PUBLIC]
  const ours = c.h.start(c.inNs(ns, [c.noloco, 'listen', '--listen', `/ip4/${ip}/tcp/0`, '--autonat-ask', jsAddr[1]]), 'noloco autonat client')
  const line = await c.h.waitForLine(ours, /^autonat reachability=(\S+) public_votes=(\d+) private_votes=(\d+) addr=(\S+)$/, c.timeout, 'autonat verdict')
  const all = () => [jsServer, ours].map(c.h.describe).join('\n')
  if (line.error !== undefined) c.h.finish(false, `${line.error}\n${all()}`)
  const [, verdict, pub, priv, addr] = line.match
  const listen = ours.stdout.match(/^\/ip4\/(\S+)\/tcp\/(\d+)\/p2p\//m)
  const want = {
    public: { verdict: 'public', pub: '1', priv: '0', addr: `/ip4/${ip}/tcp/${listen?.[2]}` },
    nated: { verdict: 'private', pub: '0', priv: '1', addr: 'none' },
    'js-server': { verdict: 'unknown', pub: '0', priv: '0', addr: 'none' }
  }[variant]
  if (verdict !== want.verdict || pub !== want.pub || priv !== want.priv || addr !== want.addr) {
    c.h.finish(false, `our verdict ${line.match[0]}, want reachability=${want.verdict} public_votes=${want.pub} private_votes=${want.priv} addr=${want.addr}\n${all()}`)
  }
  if (!alive(ours)) c.h.finish(false, `our node died after asking\n${all()}`)
  c.h.finish(true, `we asked js (${variant}): ${line.match[0]}`)
}

// The relay both DCUtR cases go through, in the public namespace.
async function startRelay (c) {
  const argv = c.relay === 'js'
    ? c.js('listen', '--host', JS_RELAY, '--relay', '1', '--exit-after', c.exitAfter)
    : [c.noloco, 'listen', '--relay', '--listen', `/ip4/${JS_RELAY}/tcp/0`]
  const [relay, addr] = await startAndWait(c, c.inNs('pub', argv), `${c.relay} relay`, ADDR, 'relay address')
  return [relay, addr[1]]
}

// Ends our listener with SIGTERM and returns its `holepunch ...` counters line, or why not.
// It must exit 0 by itself (the bound only catches a hang: a reservation-refresh timer once
// kept `noloco listen --reserve-on` alive after the signal).
async function stopAndCount (c, proc) {
  proc.child.kill('SIGTERM')
  const r = await c.h.runBounded(proc, c.timeout)
  if (r.timedOut || r.code !== 0) return { error: `our listener did not exit cleanly on SIGTERM (code ${r.code}, signal ${r.signal}, hung: ${r.timedOut})` }
  const m = proc.stdout.match(/^holepunch attempts=(\d+) succeeded=(\d+) failed=(\d+)$/m)
  return m === null ? { error: 'no holepunch counters line' } : { attempts: Number(m[1]), succeeded: Number(m[2]), failed: Number(m[3]) }
}

async function dcutrNolocoInitiator (c) {
  const [relay, relayAddr] = await startRelay(c)
  const [ours, circuit] = await startAndWait(c,
    c.inNs('o', [c.noloco, 'listen', '--hole-punch', '--listen', `/ip4/${OURS_PUBLIC}/tcp/0`, '--reserve-on', relayAddr]),
    'noloco B', RELAYED, 'relayed address')
  const jsA = c.h.start(c.inNs('pub', c.js('ping', circuit[1], '--host', JS_PEER, '--dcutr', '1', '--wait-direct', String(c.timeout / 3),
    '--count', String(PING_COUNT), '--timeout', String(c.timeout / 2))), 'js A')
  const r = await c.h.runBounded(jsA, c.timeout)
  const aliveBefore = alive(ours)
  const counts = await stopAndCount(c, ours)
  const all = () => [relay, ours, jsA].map(c.h.describe).join('\n')
  const what = `js A dials our B through the ${c.relay} relay`
  if (r.code !== 0) c.h.finish(false, `${what}: js exit ${r.code} (signal ${r.signal})\n${all()}`)
  const direct = jsA.stdout.match(/^direct (\S+)$/m)
  // js's direct connection must be to our public listen address, not through the relay.
  if (direct === null || !direct[1].startsWith(`/ip4/${OURS_PUBLIC}/tcp/`)) c.h.finish(false, `${what}: no direct connection to ${OURS_PUBLIC}\n${all()}`)
  const pings = jsA.stdout.split('\n').filter(l => /^ping \d+ rtt=\d+ms$/.test(l))
  if (pings.length !== PING_COUNT) c.h.finish(false, `${what}: ${pings.length} pings after the upgrade, want ${PING_COUNT}\n${all()}`)
  if (!aliveBefore) c.h.finish(false, `${what}: our node died\n${all()}`)
  if (counts.error !== undefined) c.h.finish(false, `${what}: ${counts.error}\n${all()}`)
  if (counts.attempts < 1 || counts.succeeded < 1) {
    c.h.finish(false, `${what}: our counters ${JSON.stringify(counts)} do not show a successful hole punch\n${all()}`)
  }
  c.h.finish(true, `${what}: DCUtR upgraded to ${direct[1]}, ${PING_COUNT} pings over it, ours counted ${JSON.stringify(counts)}`)
}

async function dcutrNolocoResponder (c) {
  const [relay, relayAddr] = await startRelay(c)
  const [jsB, circuit] = await startAndWait(c,
    c.inNs('pub', c.js('listen', '--host', JS_PEER, '--via', relayAddr, '--dcutr', '1', '--exit-after', c.exitAfter)),
    'js B', RELAYED, 'relayed address')
  const ours = c.h.start(c.inNs('n', [c.noloco, 'ping', circuit[1], '--hole-punch', '--listen', `/ip4/${OURS_NATED}/tcp/0`,
    '--wait-direct', String(c.timeout / 3), '--count', String(PING_COUNT), '--timeout', String(c.timeout / 6)]), 'noloco A (NATed)')
  const r = await c.h.runBounded(ours, c.timeout)
  const all = () => [relay, jsB, ours].map(c.h.describe).join('\n')
  const what = `our NATed A dials js B through the ${c.relay} relay`
  if (r.code !== 0) c.h.finish(false, `${what}: exit ${r.code} (signal ${r.signal})\n${all()}`)
  const direct = ours.stdout.match(/^direct (\S+)$/m)
  if (direct === null || !direct[1].startsWith(`/ip4/${JS_PEER}/tcp/`)) c.h.finish(false, `${what}: no direct connection to ${JS_PEER}\n${all()}`)
  const peer = circuit[1].slice(circuit[1].lastIndexOf('/p2p/') + 5)
  const replies = ours.stdout.split('\n').filter(l => l.startsWith(`reply from ${peer}: seq=`))
  if (replies.length !== PING_COUNT) c.h.finish(false, `${what}: ${replies.length} replies, want ${PING_COUNT}\n${all()}`)
  // js saw the same connection arrive from our router's public address (the NAT mapping).
  const jsSaw = jsB.stdout.match(new RegExp(`^direct \\S+ (/ip4/${NAT_WAN.replaceAll('.', '\\.')}/tcp/\\d+)`, 'm'))
  if (jsSaw === null) c.h.finish(false, `${what}: js B saw no direct connection from ${NAT_WAN}\n${all()}`)
  if (!alive(jsB) || !alive(relay)) c.h.finish(false, `${what}: js B or the relay died\n${all()}`)
  c.h.finish(true, `${what}: DCUtR upgraded to ${direct[1]} (js saw ${jsSaw[1]}), ${PING_COUNT} pings over it`)
}
