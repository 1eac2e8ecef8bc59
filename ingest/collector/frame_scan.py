"""Split complete WebSocket data frames out of received bytes, without websockets' parser.

Why it exists: websockets parses every frame with a generator-based reader (a few
generator resumptions, an enum lookup, a Frame object and its checks per frame), which
was the largest single cost of the collector at one trade per message. A server-to-client
frame that is a whole message (FIN set, opcode text or binary, no RSV bits, unmasked) needs
none of that: its payload is a slice of the received bytes. `scan` takes those and stops at
anything else, so the caller can hand that frame (a ping, a close, a fragment, a compressed
frame) to websockets, which keeps every rule of the protocol for them.

Frame layout (RFC 6455 section 5.2): byte 0 = FIN, RSV1-3, opcode; byte 1 = MASK bit and a
7-bit length, where 126 means a 16-bit length follows and 127 a 64-bit length.
"""

from __future__ import annotations

# What stopped a scan; plain ints, compared once per scan, not per frame.
NEED_MORE = 0  # data[position:] is an incomplete frame (or empty)
OTHER_FRAME = 1  # data[position:end] is one complete frame websockets must process
HAND_OVER = 2  # data[position:] starts a frame websockets must judge before it is complete

_WHOLE_DATA = (0x81, 0x82)  # first byte of an unfragmented text / binary frame, no RSV bits


def scan(
    data: bytes, position: int, out: list[bytes], limit: int | None, take_data: bool
) -> tuple[int, int, int]:
    """Append to `out` the payload of every whole-message data frame from data[position:].

    Stops at the first frame it does not take and returns (what stopped it, where that
    frame starts, where it ends):
    - (NEED_MORE, start, end): the frame at `start` is not complete; `end` is where it
      will end once received, or 0 while its header is still incomplete.
    - (OTHER_FRAME, start, end): data[start:end] is a complete control frame, fragment or
      frame with RSV bits, or any frame when `take_data` is False (websockets is in the
      middle of a fragmented message, where a new data frame is a protocol error).
    - (HAND_OVER, start, 0): the frame is masked (a server must not mask) or declares a
      payload over `limit`: websockets fails the connection from its header alone, as it
      would have without this reader.
    """
    size = len(data)
    append = out.append
    while size - position >= 2:
        length = data[position + 1]
        if length < 126:
            start = position + 2
        elif length == 126:
            start = position + 4
            if start > size:
                break
            length = int.from_bytes(data[position + 2 : start], "big")
        elif length == 127:
            start = position + 10
            if start > size:
                break
            length = int.from_bytes(data[position + 2 : start], "big")
        else:  # the mask bit is set
            return HAND_OVER, position, 0
        if limit is not None and length > limit:
            return HAND_OVER, position, 0
        end = start + length
        if end > size:
            return NEED_MORE, position, end
        head = data[position]
        if take_data and head in _WHOLE_DATA:
            append(data[start:end])
            position = end
        else:
            return OTHER_FRAME, position, end
    return NEED_MORE, position, 0
