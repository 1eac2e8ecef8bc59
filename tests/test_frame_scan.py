"""frame_scan.scan on byte streams built with websockets' own serializer (or by hand)."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import pytest
from websockets.frames import Close, CloseCode, Frame, Opcode

from ingest.collector.frame_scan import HAND_OVER, NEED_MORE, OTHER_FRAME, scan

# Opcode members by name: websockets.frames has no such aliases in 14.0, the lowest allowed.
BINARY, CLOSE, CONT, PING, PONG, TEXT = (
    Opcode.BINARY,
    Opcode.CLOSE,
    Opcode.CONT,
    Opcode.PING,
    Opcode.PONG,
    Opcode.TEXT,
)

# Payload sizes on both sides of the 7-bit / 16-bit / 64-bit length encodings.
SMALL_SIZES = (0, 1, 2, 124, 125, 126, 127, 128, 300)
BIG_SIZES = (65534, 65535, 65536, 65537)


def ws_frame(opcode: Opcode, data: bytes, fin: bool = True) -> bytes:
    return Frame(opcode, data, fin=fin).serialize(mask=False, extensions=[])


def raw_frame(head: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """A frame with any first byte (websockets refuses to serialize RSV bits)."""
    n, bit = len(payload), 0x80 if mask is not None else 0
    if n < 126:
        header = bytes([head, bit | n])
    elif n < 65536:
        header = bytes([head, bit | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([head, bit | 127]) + n.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def header_size(frame: bytes) -> int:
    return {126: 4, 127: 10}.get(frame[1] & 0x7F, 2)


@dataclass
class Stream:
    frames: list[bytes]
    expected: list[tuple[str, bytes]]  # ("data", payload) or ("other", frame bytes), in order

    @property
    def data(self) -> bytes:
        return b"".join(self.frames)

    def lengths(self) -> dict[int, bytes]:
        """Each frame by its offset in the stream."""
        at, offset = {}, 0
        for frame in self.frames:
            at[offset] = frame
            offset += len(frame)
        return at


def random_stream(rng: random.Random, count: int, sizes: tuple[int, ...]) -> Stream:
    frames: list[bytes] = []
    expected: list[tuple[str, bytes]] = []

    def other(frame: bytes) -> None:
        frames.append(frame)
        expected.append(("other", frame))

    def control() -> None:
        kind = rng.choice((PING, PONG, CLOSE))
        if kind is CLOSE:
            other(ws_frame(CLOSE, Close(CloseCode.NORMAL_CLOSURE, "bye").serialize()))
        else:
            other(ws_frame(kind, rng.randbytes(rng.choice((0, 4, 125)))))

    while len(frames) < count:
        roll = rng.random()
        if roll < 0.55:
            payload = rng.randbytes(rng.choice(sizes))
            frames.append(ws_frame(rng.choice((TEXT, BINARY)), payload))
            expected.append(("data", payload))
        elif roll < 0.7:
            control()
        elif roll < 0.8:
            other(raw_frame(0xC1, rng.randbytes(rng.choice(sizes))))  # compressed (RSV1)
        else:  # a fragmented message, with a control frame in between sometimes
            other(ws_frame(rng.choice((TEXT, BINARY)), rng.randbytes(rng.choice(sizes)), fin=False))
            for _ in range(rng.randrange(3)):
                if rng.random() < 0.3:
                    control()
                other(ws_frame(CONT, rng.randbytes(rng.choice(sizes)), fin=False))
            other(ws_frame(CONT, rng.randbytes(rng.choice(sizes)), fin=True))
    return Stream(frames, expected)


def feed(stream: Stream, chunks: list[bytes], limit: int | None = None) -> list[tuple[str, bytes]]:
    """Run scan the way BatchClientConnection does: carry the unconsumed tail to the next read.

    Also checks every NEED_MORE against the frame actually at that offset.
    """
    frames_at = stream.lengths()
    events: list[tuple[str, bytes]] = []
    buf, consumed, in_fragment = b"", 0, False
    for chunk in chunks:
        buf += chunk
        position = 0
        while True:
            out: list[bytes] = []
            stop, start, end = scan(buf, position, out, limit, not in_fragment)
            events += [("data", payload) for payload in out]
            if stop == OTHER_FRAME:
                frame = buf[start:end]
                assert frame == frames_at[consumed + start]
                events.append(("other", frame))
                opcode, fin = frame[0] & 0x0F, frame[0] & 0x80
                if opcode in (TEXT, BINARY) and not fin:
                    in_fragment = True
                elif opcode == CONT and fin:
                    in_fragment = False
                position = end
                continue
            assert stop == NEED_MORE
            available = len(buf) - start
            if available:
                frame = frames_at[consumed + start]
                assert available < len(frame)
                if available >= header_size(frame):
                    assert end == start + len(frame)
                else:
                    assert end == 0
            else:
                assert end == 0
            consumed += start
            buf = buf[start:]
            break
    assert buf == b""
    return events


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = [0, *sorted(points), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@pytest.mark.parametrize("seed", range(6))
def test_random_streams_with_big_frames_whole_and_cut_at_random(seed: int) -> None:
    rng = random.Random(seed)
    stream = random_stream(rng, 40, SMALL_SIZES + BIG_SIZES)
    data = stream.data
    assert feed(stream, [data]) == stream.expected
    for _ in range(15):
        points = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 30))]
        assert feed(stream, cut(data, points)) == stream.expected


@pytest.mark.parametrize("seed", range(4))
def test_random_small_streams_cut_at_every_point_and_byte_by_byte(seed: int) -> None:
    stream = random_stream(random.Random(100 + seed), 25, SMALL_SIZES)
    data = stream.data
    for point in range(len(data) + 1):
        assert feed(stream, cut(data, [point])) == stream.expected
    assert feed(stream, [data[i : i + 1] for i in range(len(data))]) == stream.expected


@pytest.mark.parametrize("size", [*BIG_SIZES, 126, 65535 + 1000])
def test_long_length_headers_cut_at_every_point(size: int) -> None:
    payload = random.Random(size).randbytes(size)
    stream = Stream(
        [ws_frame(TEXT, b"first"), ws_frame(BINARY, payload), ws_frame(PING, b"p"), ws_frame(TEXT, b"last")],
        [("data", b"first"), ("data", payload), ("other", ws_frame(PING, b"p")), ("data", b"last")],
    )
    data = stream.data
    big_start = len(stream.frames[0])
    big_end = big_start + len(stream.frames[1])
    for point in [*range(big_start + 12), *range(big_end - 3, len(data) + 1)]:
        assert feed(stream, cut(data, [point])) == stream.expected
    # The header arriving one byte at a time, then the rest.
    chunks = [data[i : i + 1] for i in range(big_start + 11)] + [data[big_start + 11 :]]
    assert feed(stream, chunks) == stream.expected


def test_take_data_false_returns_every_frame_as_other() -> None:
    frames = [ws_frame(TEXT, b"a"), ws_frame(BINARY, b"b" * 200), ws_frame(CONT, b"c"), ws_frame(PING, b"")]
    data = b"".join(frames)
    out: list[bytes] = []
    position = 0
    for frame in frames:
        assert scan(data, position, out, None, False) == (OTHER_FRAME, position, position + len(frame))
        position += len(frame)
    assert scan(data, position, out, None, False) == (NEED_MORE, len(data), 0)
    assert out == []


def test_scan_starts_at_position_and_stops_at_the_first_other_frame() -> None:
    data = ws_frame(TEXT, b"skipped") + ws_frame(TEXT, b"x") + ws_frame(PONG, b"y") + ws_frame(TEXT, b"z")
    out: list[bytes] = []
    start = len(ws_frame(TEXT, b"skipped"))
    pong_at = start + len(ws_frame(TEXT, b"x"))
    assert scan(data, start, out, None, True) == (OTHER_FRAME, pong_at, pong_at + 3)
    assert out == [b"x"]


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536])
def test_masked_frame_is_handed_over_after_the_frames_before_it(size: int) -> None:
    masked = raw_frame(0x82, b"m" * size, mask=b"\x01\x02\x03\x04")
    data = ws_frame(TEXT, b"before") + masked + ws_frame(TEXT, b"after")
    out: list[bytes] = []
    at = len(ws_frame(TEXT, b"before"))
    assert scan(data, 0, out, None, True) == (HAND_OVER, at, 0)
    assert out == [b"before"]
    # Judged from its first two bytes: neither the length nor the payload needs to be there.
    assert scan(data[: at + 2], 0, [], None, True) == (HAND_OVER, at, 0)
    assert scan(data, at, [], None, False) == (HAND_OVER, at, 0)


@pytest.mark.parametrize(
    ("size", "limit"), [(100, 99), (126, 125), (1000, 999), (65536, 65535), (70000, 1000)]
)
def test_declared_length_over_limit_is_handed_over_from_the_header_alone(size: int, limit: int) -> None:
    frame = ws_frame(BINARY, bytes(size))
    header = frame[: header_size(frame)]
    for data in (frame, header, header + b"\x00"):
        assert scan(data, 0, [], limit, True) == (HAND_OVER, 0, 0)
        assert scan(data, 0, [], limit, False) == (HAND_OVER, 0, 0)
    # At the limit exactly, the frame is taken.
    out: list[bytes] = []
    assert scan(frame, 0, out, size, True) == (NEED_MORE, len(frame), 0)
    assert out == [bytes(size)]


def test_control_frame_over_limit_is_handed_over() -> None:
    assert scan(ws_frame(PING, b"12345"), 0, [], 4, True) == (HAND_OVER, 0, 0)


def test_huge_64_bit_length_over_limit_is_handed_over() -> None:
    header = bytes([0x82, 127]) + (2**40).to_bytes(8, "big")
    assert scan(header, 0, [], 2**20, True) == (HAND_OVER, 0, 0)
    # Without a limit it is a frame still to come, and where it ends is known.
    assert scan(header, 0, [], None, True) == (NEED_MORE, 0, 10 + 2**40)


def test_no_limit_takes_big_frames() -> None:
    payloads = [bytes(range(256)) * 300, b"small", b"\xab" * 65536]
    data = b"".join(ws_frame(BINARY, p) for p in payloads)
    out: list[bytes] = []
    assert scan(data, 0, out, None, True) == (NEED_MORE, len(data), 0)
    assert out == payloads


@pytest.mark.parametrize(
    ("frame", "header"),
    [
        (ws_frame(TEXT, b"x" * 100), 2),
        (ws_frame(TEXT, b"x" * 126), 4),
        (ws_frame(BINARY, b"x" * 65535), 4),
        (ws_frame(BINARY, b"x" * 65536), 10),
        (ws_frame(PING, b"x" * 20), 2),
    ],
)
def test_need_more_end_is_known_once_the_header_is(frame: bytes, header: int) -> None:
    prefix = ws_frame(TEXT, b"p")
    data = prefix + frame
    at = len(prefix)
    for have in range(header):  # the header, extended length included, is incomplete
        out: list[bytes] = []
        assert scan(data[: at + have], 0, out, None, True) == (NEED_MORE, at, 0)
        assert out == [b"p"]
    for have in (header, header + 1, len(frame) - 1):
        out = []
        assert scan(data[: at + have], 0, out, None, True) == (NEED_MORE, at, len(data))
        assert out == [b"p"]


def test_empty_input_and_position_at_the_end() -> None:
    out: list[bytes] = []
    assert scan(b"", 0, out, None, True) == (NEED_MORE, 0, 0)
    data = ws_frame(TEXT, b"abc")
    assert scan(data, len(data), out, 10, True) == (NEED_MORE, len(data), 0)
    assert out == []


@pytest.mark.parametrize(
    "head",
    [
        0xC1,  # text, RSV1: compressed
        0xC2,  # binary, RSV1
        0xA1,  # RSV2
        0x91,  # RSV3
        0x01,  # text without FIN: a first fragment
        0x80,  # a lone final continuation frame: websockets must reject it
        0x83,  # reserved opcode
    ],
)
def test_frames_that_are_not_plain_whole_messages_are_other(head: int) -> None:
    frame = raw_frame(head, b"payload")
    data = ws_frame(TEXT, b"a") + frame + ws_frame(TEXT, b"b")
    at = len(ws_frame(TEXT, b"a"))
    out: list[bytes] = []
    assert scan(data, 0, out, None, True) == (OTHER_FRAME, at, at + len(frame))
    assert out == [b"a"]
    # The caller continues after it.
    assert scan(data, at + len(frame), out, None, True) == (NEED_MORE, len(data), 0)
    assert out == [b"a", b"b"]
