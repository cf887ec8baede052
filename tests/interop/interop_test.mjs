// Interop test driver: runs one case of the js-libp2p <-> noloco matrix as two real processes on
// loopback and checks the outcome. ctest registers one test per case (tests/interop/CMakeLists.txt).
//
//   node interop_test.mjs --case <name> --interop-dir <tools/interop> [--noloco <path>] [--timeout S]
//
// A case names who listens, who pings, which PSK each side gets, and whether the ping must work.
// Every child process is bounded by a timeout and killed on the way out, whatever happened.
// Exits 0 when the case behaved as expected, 1 otherwise (with the reason and both sides' output),
// 77 when a case that needs network namespaces cannot have them (AutoNAT and DCUtR cases:
// nat_cases.mjs).
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { NAT_CASES, runNatCase } from './nat_cases.mjs'

const CASES = {
  // The harness proving itself: js against js.
  'js-js': { listener: 'js', pinger: 'js', listenPsk: null, pingPsk: null, expect: 'ok' },
  'js-js-psk': { listener: 'js', pinger: 'js', listenPsk: 'a', pingPsk: 'a', expect: 'ok' },
  'js-js-psk-mismatch': { listener: 'js', pinger: 'js', listenPsk: 'a', pingPsk: 'b', expect: 'fail' },
  // Our node against js-libp2p, both directions.
  'js-pings-noloco': { listener: 'noloco', pinger: 'js', listenPsk: null, pingPsk: null, expect: 'ok' },
  'noloco-pings-js': { listener: 'js', pinger: 'noloco', listenPsk: null, pingPsk: null, expect: 'ok' },
  'js-pings-noloco-psk': { listener: 'noloco', pinger: 'js', listenPsk: 'a', pingPsk: 'a', expect: 'ok' },
  'noloco-pings-js-psk': { listener: 'js', pinger: 'noloco', listenPsk: 'a', pingPsk: 'a', expect: 'ok' },
  'js-pings-noloco-psk-mismatch': { listener: 'noloco', pinger: 'js', listenPsk: 'a', pingPsk: 'b', expect: 'fail' },
  'noloco-pings-js-psk-mismatch': { listener: 'js', pinger: 'noloco', listenPsk: 'a', pingPsk: 'b', expect: 'fail' }
}
// Circuit relay v2: a relay, a target that reserves on it, and a pinger that reaches the target
// only through it (dialling <relay>/p2p-circuit/p2p/<target>). Each case puts noloco in a
// different role against js-libp2p's @libp2p/circuit-relay-v2.
const RELAY_CASES = {
  'relay-js-js-js': { relay: 'js', target: 'js', pinger: 'js' },              // the harness
  'relay-noloco-js-js': { relay: 'noloco', target: 'js', pinger: 'js' },      // our relay, js clients
  'relay-js-noloco-noloco': { relay: 'js', target: 'noloco', pinger: 'noloco' },  // js relay, our clients
  'relay-js-noloco-js': { relay: 'js', target: 'noloco', pinger: 'js' },      // our stop side, js dialer
  'relay-js-js-noloco': { relay: 'js', target: 'js', pinger: 'noloco' }       // our hop client, js target
}
const PING_COUNT = 3

const children = new Set()
const cleanups = []
let workDir = null

function cleanup () {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  children.clear()
  // After the children: a network namespace goes once nothing runs in it.
  for (const fn of cleanups.splice(0)) {
    try { fn() } catch {}
  }
  if (workDir !== null) rmSync(workDir, { recursive: true, force: true })
  workDir = null
}

function finish (ok, message) {
  process.stdout.write(`${ok ? 'PASS' : 'FAIL'}: ${message}\n`)
  cleanup()
  process.exit(ok ? 0 : 1)
}

function parseArgs (argv) {
  const flags = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) finish(false, `bad argument ${argv[i]}`)
    flags[argv[i].slice(2)] = argv[i + 1]
  }
  return flags
}

// Writes a PSK file in the standard go-/js-libp2p format (what @libp2p/pnet decodes), 0600 as
// a secret should be (noloco refuses a key file that others can read).
function writePsk (name) {
  const path = join(workDir, `${name}.psk`)
  writeFileSync(path, `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
  return path
}

// Starts a child; collects its output; resolves `exited` with {code, signal}.
function start (argv, label) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  const proc = { child, label, stdout: '', stderr: '' }
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stdout.on('data', d => { proc.stdout += d })
  child.stderr.on('data', d => { proc.stderr += d })
  proc.exited = new Promise(resolve => {
    child.on('error', err => { proc.stderr += `spawn error: ${err.message}\n`; resolve({ code: null, signal: 'spawn-error' }) })
    child.on('close', (code, signal) => resolve({ code, signal }))
  })
  return proc
}

function describe (proc) {
  const indent = s => s.trimEnd().split('\n').map(l => `    ${l}`).join('\n')
  return `  [${proc.label}] stdout:\n${indent(proc.stdout)}\n  [${proc.label}] stderr:\n${indent(proc.stderr)}`
}

// The first complete stdout line matching `re`: { match } or { error }.
function waitForLine (proc, re, seconds, what) {
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve({ error: `${proc.label}: no ${what} within ${seconds}s` }), seconds * 1000)
    const check = () => {
      for (const l of proc.stdout.split('\n').slice(0, -1)) {
        const match = l.trim().match(re)
        if (match !== null) { clearTimeout(timer); resolve({ match }); return }
      }
    }
    proc.child.stdout.on('data', check)
    proc.exited.then(r => { clearTimeout(timer); resolve({ error: `${proc.label} exited early (code ${r.code}, signal ${r.signal}) before its ${what}` }) })
    check()
  })
}

// The listener's dialable address: the first stdout line that is a multiaddr with a /p2p/ part.
function waitForAddress (proc, seconds) {
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve({ error: `no listen address within ${seconds}s` }), seconds * 1000)
    const check = () => {
      const line = proc.stdout.split('\n').slice(0, -1).find(l => /^\/ip[46]\/.*\/p2p\/\S+$/.test(l.trim()))
      if (line !== undefined) { clearTimeout(timer); resolve({ addr: line.trim() }) }
    }
    proc.child.stdout.on('data', check)
    proc.exited.then(r => { clearTimeout(timer); resolve({ error: `listener exited early (code ${r.code}, signal ${r.signal})` }) })
    check()
  })
}

async function runBounded (proc, seconds) {
  let timedOut = false
  const timer = setTimeout(() => { timedOut = true; proc.child.kill('SIGKILL') }, seconds * 1000)
  const result = await proc.exited
  clearTimeout(timer)
  return { ...result, timedOut }
}

function commandFor (role, side, opts) {
  const { interopDir, noloco, addr, psk, timeout } = opts
  const pskArgs = psk === null ? [] : ['--psk', psk]
  if (side === 'js') {
    const dir = resolve(interopDir)
    const js = [process.execPath, '--import', pathToFileURL(join(dir, 'polyfill.mjs')).href, join(dir, 'node.mjs')]
    const listen = [...js, 'listen', '--exit-after', String(timeout * 2), ...pskArgs]
    if (role === 'relay') return [...listen, '--relay', '1']
    if (role === 'target') return [...listen, '--via', addr]
    return role === 'listen'
      ? listen
      : [...js, 'ping', addr, '--count', String(PING_COUNT), '--timeout', String(timeout / 3), ...pskArgs]
  }
  if (role === 'relay') return [noloco, 'listen', '--relay']
  if (role === 'target') return [noloco, 'listen', '--reserve-on', addr]
  // Pingers get their own deadline well inside ours, so that a handshake that never completes
  // (pnet cannot tell a wrong key from a slow peer) ends in the pinger's own error and exit code.
  return role === 'listen'
    ? [noloco, 'listen', ...pskArgs]
    : [noloco, 'ping', addr, '--count', String(PING_COUNT), '--timeout', String(timeout / 6), ...pskArgs]
}

// The target's circuit address: its `relayed <multiaddr>` stdout line.
function waitForRelayed (proc, seconds) {
  return new Promise(resolve => {
    const timer = setTimeout(() => resolve({ error: `no relayed address within ${seconds}s` }), seconds * 1000)
    const check = () => {
      const line = proc.stdout.split('\n').slice(0, -1).find(l => /^relayed \/ip4\/127\..*\/p2p-circuit\/p2p\/\S+$/.test(l.trim()))
      if (line !== undefined) { clearTimeout(timer); resolve({ addr: line.trim().slice('relayed '.length) }) }
    }
    proc.child.stdout.on('data', check)
    proc.exited.then(r => { clearTimeout(timer); resolve({ error: `target exited early (code ${r.code}, signal ${r.signal})` }) })
    check()
  })
}

// Relay, target, pinger; the pinger must identify the target (js) and ping it PING_COUNT times
// through the relay.
async function runRelayCase (spec, common) {
  const { timeout } = common
  const relay = start(commandFor('relay', spec.relay, { ...common, psk: null }), `${spec.relay} relay`)
  const relayUp = await waitForAddress(relay, timeout)
  if (relayUp.error !== undefined) finish(false, `${relayUp.error}\n${describe(relay)}`)
  const target = start(commandFor('target', spec.target, { ...common, psk: null, addr: relayUp.addr }), `${spec.target} target`)
  const reserved = await waitForRelayed(target, timeout)
  if (reserved.error !== undefined) finish(false, `${reserved.error}\n${[relay, target].map(describe).join('\n')}`)
  const addr = reserved.addr
  if (!addr.startsWith(`${relayUp.addr}/p2p-circuit/p2p/`)) finish(false, `circuit address ${addr} is not through ${relayUp.addr}`)
  const pinger = start(commandFor('ping', spec.pinger, { ...common, psk: null, addr }), `${spec.pinger} ping`)
  const result = await runBounded(pinger, timeout)
  const all = () => [relay, target, pinger].map(describe).join('\n')
  const what = `${spec.pinger} pings ${spec.target} through ${spec.relay} relay at ${addr}`
  if (result.timedOut) finish(false, `${what}: still running after ${timeout}s\n${all()}`)
  if (result.code !== 0) finish(false, `${what}: exit ${result.code} (signal ${result.signal}), expected success\n${all()}`)
  let problem = null
  const wantPeer = addr.slice(addr.lastIndexOf('/p2p/') + 5)
  if (spec.pinger === 'js') {
    const line = pinger.stdout.split('\n').find(l => l.startsWith('identify '))
    const id = line === undefined ? null : JSON.parse(line.slice('identify '.length))
    const pings = pinger.stdout.split('\n').filter(l => /^ping \d+ rtt=\d+ms$/.test(l))
    if (id === null || id.peerId !== wantPeer) problem = `identify over the relayed connection did not name ${wantPeer}`
    else if (pings.length !== PING_COUNT) problem = `expected ${PING_COUNT} ping lines, saw ${pings.length}`
  } else {
    problem = checkNolocoPings(pinger, addr)
  }
  if (problem !== null) finish(false, `${what}: ${problem}\n${all()}`)
  for (const p of [relay, target]) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) finish(false, `${what}: ${p.label} died\n${all()}`)
  }
  finish(true, `${what}: ${PING_COUNT} pings${spec.pinger === 'js' ? ' + identify' : ''} ok`)
}

// What js printed about the remote after a successful dial: must be a well-formed identify.
function checkIdentify (pinger, listenAddr) {
  const line = pinger.stdout.split('\n').find(l => l.startsWith('identify '))
  if (line === undefined) return 'js pinger printed no identify result'
  const id = JSON.parse(line.slice('identify '.length))
  const wantPeer = listenAddr.slice(listenAddr.lastIndexOf('/p2p/') + 5)
  if (id.peerId !== wantPeer) return `identify peerId ${id.peerId} != dialled ${wantPeer}`
  if (typeof id.agentVersion !== 'string' || id.agentVersion.length === 0) return 'identify has no agentVersion'
  for (const p of ['/ipfs/id/1.0.0', '/ipfs/ping/1.0.0']) {
    if (!id.protocols.includes(p)) return `identify protocols ${JSON.stringify(id.protocols)} lack ${p}`
  }
  const tcpPart = listenAddr.match(/\/tcp\/\d+/)[0]
  if (!id.listenAddrs.some(a => a.includes(tcpPart))) {
    return `identify listenAddrs ${JSON.stringify(id.listenAddrs)} do not contain the listening ${tcpPart}`
  }
  const pings = pinger.stdout.split('\n').filter(l => /^ping \d+ rtt=\d+ms$/.test(l))
  if (pings.length !== PING_COUNT) return `expected ${PING_COUNT} ping lines, saw ${pings.length}`
  return null
}

// What `noloco ping` printed (cli/cmd_ping.cc): one `reply from <peer>: seq=<n> time=<ms> ms`
// line per ping, naming the peer id we dialled.
function checkNolocoPings (pinger, listenAddr) {
  const wantPeer = listenAddr.slice(listenAddr.lastIndexOf('/p2p/') + 5)
  const replies = pinger.stdout.split('\n').filter(l => l.startsWith(`reply from ${wantPeer}: seq=`))
  if (replies.length !== PING_COUNT) return `expected ${PING_COUNT} 'reply from ${wantPeer}' lines, saw ${replies.length}`
  return null
}

async function main () {
  const flags = parseArgs(process.argv.slice(2))
  const relaySpec = RELAY_CASES[flags.case]
  const natSpec = NAT_CASES[flags.case]
  const spec = CASES[flags.case] ?? relaySpec ?? (natSpec === undefined ? undefined : { listener: 'noloco' })
  if (spec === undefined) {
    finish(false, `unknown case ${flags.case}; known: ${[...Object.keys(CASES), ...Object.keys(RELAY_CASES), ...Object.keys(NAT_CASES)].join(', ')}`)
  }
  const interopDir = flags['interop-dir']
  const timeout = Number(flags.timeout ?? 30)
  if (interopDir === undefined) finish(false, '--interop-dir is required')
  // Missing packages are a failure, never a skip: CI runs `npm ci` (tools/test.sh) before ctest.
  if (!existsSync(join(interopDir, 'node_modules', 'libp2p', 'package.json'))) {
    finish(false, `${interopDir}/node_modules is missing: run \`npm ci\` in tools/interop (tools/test.sh does)`)
  }
  const usesNoloco = [spec.listener, spec.pinger, spec.relay, spec.target].includes('noloco')
  if (usesNoloco && (flags.noloco === undefined || !existsSync(flags.noloco))) {
    finish(false, `noloco binary not found: ${flags.noloco}`)
  }

  workDir = mkdtempSync(join(tmpdir(), 'noloco-interop-'))
  const keys = {}
  const pskFor = name => name === null ? null : (keys[name] ??= writePsk(name))
  const common = { interopDir, noloco: flags.noloco, timeout }
  if (relaySpec !== undefined) return runRelayCase(relaySpec, common)
  if (natSpec !== undefined) {
    const skip = why => { process.stdout.write(`SKIP: ${why}\n`); cleanup(); process.exit(77) }
    const helpers = { start, waitForLine, describe, runBounded, finish, skip, onCleanup: fn => cleanups.push(fn) }
    return runNatCase(flags.case, common, helpers)
  }

  const listener = start(commandFor('listen', spec.listener, { ...common, psk: pskFor(spec.listenPsk) }), `${spec.listener} listen`)
  const listening = await waitForAddress(listener, timeout)
  if (listening.error !== undefined) finish(false, `${listening.error}\n${describe(listener)}`)
  const addr = listening.addr
  if (!/^\/ip4\/127\.|^\/ip6\/::1\//.test(addr)) finish(false, `listener address ${addr} is not loopback`)

  const both = (...procs) => [listener, ...procs].map(describe).join('\n')
  const runPinger = async (pskName, label) => {
    const proc = start(commandFor('ping', spec.pinger, { ...common, addr, psk: pskFor(pskName) }), label)
    const result = await runBounded(proc, timeout)
    if (result.timedOut) finish(false, `${label}: still running after ${timeout}s\n${both(proc)}`)
    if (listener.child.exitCode !== null || listener.child.signalCode !== null) {
      finish(false, `${label}: the listener died (exit ${listener.child.exitCode}, signal ${listener.child.signalCode})\n${both(proc)}`)
    }
    return { proc, result }
  }
  const what = `${spec.pinger} pings ${spec.listener} at ${addr}`

  if (spec.expect === 'ok') {
    const { proc, result } = await runPinger(spec.pingPsk, `${spec.pinger} ping`)
    if (result.code !== 0) finish(false, `${what}: exit ${result.code} (signal ${result.signal}), expected success\n${both(proc)}`)
    const problem = spec.pinger === 'js' ? checkIdentify(proc, addr) : checkNolocoPings(proc, addr)
    if (problem !== null) finish(false, `${what}: ${problem}\n${both(proc)}`)
    finish(true, `${what}: ${PING_COUNT} pings${spec.pinger === 'js' ? ' + identify' : ''} ok`)
  }

  // Mismatch: first a control ping with the listener's own key must work, so that the failure
  // that follows can only come from the other key (not from a bad file, flag or listener).
  const control = await runPinger(spec.listenPsk, `${spec.pinger} ping (control, matching key)`)
  if (control.result.code !== 0) {
    finish(false, `${what}: control ping with the matching key failed (exit ${control.result.code})\n${both(control.proc)}`)
  }
  const { proc, result } = await runPinger(spec.pingPsk, `${spec.pinger} ping (mismatched key)`)
  if (result.signal !== null || result.code === 0 || result.code === null) {
    finish(false, `${what} with mismatched PSKs: exit ${result.code} (signal ${result.signal}), expected a non-zero exit\n${both(proc)}`)
  }
  if (proc.stderr.trim().length === 0) finish(false, `${what}: failed but gave no reason on stderr\n${both(proc)}`)
  finish(true, `${what}: matching key ok, mismatched key failed as expected (exit ${result.code}): ${proc.stderr.trim().split('\n').pop()}`)
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(false, `interrupted by ${sig}`))
main().catch(err => finish(false, `driver error: ${err.stack ?? err}`))
