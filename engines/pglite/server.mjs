// TSL test engine: PGlite (PostgreSQL 17, WASM) with TimescaleDB's TSL edition, served over the
// PostgreSQL wire protocol on loopback. Correctness of TSL features only (continuous aggregates,
// compression, policies run by hand): one shared session, no concurrency, no background jobs.
//
//   node server.mjs --data DIR|memory:// [--port 55451] [--host 127.0.0.1] [--debug]
//
// Prints "READY <host>:<port> ..." once it accepts connections. SIGINT/SIGTERM close cleanly
// (PGlite flushes its data dir on close). Clients: sslmode=disable, prepare_threshold=None.
import { parseArgs } from 'node:util'
import { PGlite } from '@electric-sql/pglite' // resolves to the @unni-craftsman fork
import { timescaledb } from '@electric-sql/pglite/timescaledb'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import { socketShim } from './shim.mjs'

const { values: opts } = parseArgs({
  options: {
    data: { type: 'string' },
    port: { type: 'string', default: '55451' },
    host: { type: 'string', default: '127.0.0.1' },
    'max-connections': { type: 'string', default: '200' },
    debug: { type: 'boolean', default: false },
  },
})
if (!opts.data) {
  console.error('server.mjs: --data DIR (or memory://) is required')
  process.exit(2)
}
if (!['127.0.0.1', '::1', 'localhost'].includes(opts.host)) {
  // trust-everything server: never expose it beyond loopback
  console.error(`server.mjs: refusing to listen on non-loopback host ${opts.host}`)
  process.exit(2)
}

const started = performance.now()
const db = await PGlite.create(opts.data, { extensions: { timescaledb } })
// PGlite has no shared_preload_libraries: without loading the library now, the first
// INSERT/COPY into a hypertable after a restart fails ("invalid INSERT on the root table").
await db.exec("LOAD 'timescaledb'")

const server = new PGLiteSocketServer({
  db: await socketShim(db),
  host: opts.host,
  port: Number(opts.port),
  maxConnections: Number(opts['max-connections']), // the library's default is 1
  debug: opts.debug,
})
await server.start()
const rssMb = Math.round(process.memoryUsage().rss / 2 ** 20)
const ms = Math.round(performance.now() - started)
console.log(`READY ${opts.host}:${opts.port} pid=${process.pid} data=${opts.data} start_ms=${ms} rss_mb=${rssMb}`)

let closing = false
async function shutdown(signal) {
  if (closing) return
  closing = true
  console.log(`${signal}: closing`)
  try {
    await server.stop()
    await db.close()
  } finally {
    process.exit(0)
  }
}
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => shutdown(signal))
