// js-libp2p 3.x calls Promise.withResolvers (ES2024), which Node 22 has and Node 20 lacks.
// Loaded with `node --import ./polyfill.mjs` before any libp2p module; a no-op on newer Node.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers () {
    let resolve
    let reject
    const promise = new this((res, rej) => { resolve = res; reject = rej })
    return { promise, resolve, reject }
  }
}
