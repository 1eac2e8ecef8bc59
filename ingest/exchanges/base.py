"""The contract every exchange adapter fulfils.

An adapter does no I/O: it builds the text frames to send after connecting and turns
received frames into rows. The collector owns sockets, timers and reconnects, so an
adapter is tested on recorded frames alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from ingest.model import DataType
from ingest.rows import DataRow, MarketRow, TradeRow

if TYPE_CHECKING:
    from ingest.config.secrets import ExchangeCredentials


class ControlKind(Enum):
    """What a non-data frame means to the collector."""

    SUBSCRIBED = "subscribed"  # the exchange acknowledged one subscription
    ERROR = "error"  # the exchange refused something (detail carries code and message)
    PONG = "pong"  # answer to our application-level ping
    RECONNECT_SOON = "reconnect_soon"  # the exchange announced it will close this connection
    INFO = "info"  # anything else worth logging, nothing to do
    LOGGED_IN = "logged_in"  # the venue accepted the connection's login (Subscription.login)
    # The venue refused the login for a reason retrying cannot fix (a wrong key, signature,
    # passphrase, a stale timestamp): the members of that connection stop with an error.
    REFUSED = "refused"
    # The pair's data lost its continuity (a venue's sequence gap in an incremental book):
    # the collector unsubscribes and resubscribes that pair's book streams only, for a
    # fresh snapshot.
    RESYNC = "resync"


@dataclass(frozen=True, slots=True)
class Control:
    """A control frame, reduced to its kind and a human-readable detail."""

    kind: ControlKind
    detail: str
    # The id of the request this answers, when the venue echoes one (Binance's "id"): a
    # shared connection gives the answer to the pair whose request it was.
    request_id: str | None = None


class Login(Protocol):
    """How a private endpoint admits a connection: one frame sent right after connecting,
    built at that moment (a venue signs it with the current time), and the venue's answer,
    awaited before any subscribe frame is sent. Done again on every (re)connect.

    Implementations hold credentials: their repr must not show them."""

    def frame(self) -> str:
        """The login frame, built and signed now."""
        ...

    def answer(self, frame: bytes) -> Control | None:
        """What a received frame says about the login: LOGGED_IN, REFUSED (fatal: the
        credentials or the clock are wrong), ERROR (worth a retry, like a failed connect),
        or None when the frame is not the login's answer."""
        ...


@dataclass(frozen=True, slots=True)
class Subscription:
    """One symbol's streams on one endpoint: its URL and the text frames that subscribe them.

    carries_trades: the streams include the symbol's trades (gap filling watches them).
    streams: how many streams (channels) they are, counted against the venue's streams per
    connection. unsubscribe: the frames that end them on a connection shared with other
    pairs. request_ids: the ids the subscribe frames carry, when the venue answers by id."""

    url: str
    messages: tuple[str, ...]
    carries_trades: bool = False
    streams: int = 1
    unsubscribe: tuple[str, ...] = ()
    request_ids: tuple[str, ...] = ()
    login: Login | None = None
    # Frames that unsubscribe and subscribe again the incremental book streams among them
    # (for a fresh snapshot after a sequence gap: RESYNC); empty: none.
    resync: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Combined:
    """Subscribe frames for the subscriptions of many symbols on one connection (fewer
    frames than each symbol's own), and the request ids they carry, if the venue answers by id."""

    messages: tuple[str, ...]
    request_ids: tuple[str, ...] = ()


@dataclass(slots=True)
class FrameResult:
    """Everything one frame produced: rows to store and/or one control signal."""

    trades: list[TradeRow] = field(default_factory=list)
    market: list[MarketRow] = field(default_factory=list)
    control: Control | None = None
    # Items of the frame refused alone (the frame's other items are in trades/market):
    # (the frame reduced to the refused item, reason).
    rejected: list[tuple[str | bytes, str]] = field(default_factory=list)


@dataclass(slots=True)
class ParsedBatch:
    """Everything a batch of received frames produced, frame order kept within each list."""

    rows: list[DataRow] = field(default_factory=list)  # to store
    controls: list[Control] = field(default_factory=list)
    # (what was refused, reason): a whole frame, or one item of a frame reduced to that item
    rejected: list[tuple[str | bytes, str]] = field(default_factory=list)
    rejected_frames: int = 0  # entries of `rejected` that are whole frames
    # Incremental book updates dropped on purpose: after a sequence gap, before the fresh
    # snapshot (they would be applied to a book known to be wrong).
    book_updates_dropped: int = 0


class Keepalive(Enum):
    """How the collector proves a quiet connection alive (the venue's rule)."""

    TEXT_PING = "text_ping"  # send the adapter's ping_text; the venue answers with a frame (OKX)
    PROTOCOL_PING = "protocol_ping"  # send a WebSocket ping frame; the pong is the answer (Binance)


class ExchangeAdapter(Protocol):
    """Builds subscriptions, routes and parses frames for one exchange; never touches the network.

    `keepalive` is the venue's way to prove a quiet connection alive (`ping_text` is the
    frame sent for TEXT_PING). The venue's tunable limits (connection lifetime, message
    pacing) are settings of its connection model (ingest.exchanges.venue)."""

    name: str
    keepalive: Keepalive
    ping_text: str
    # Streams one connection may carry (None: the venue sets no limit).
    max_streams_per_connection: int | None

    def combine(self, subscriptions: Sequence[Subscription]) -> Combined:
        """The subscribe frames that subscribe all of `subscriptions` (one endpoint, at most
        max_streams_per_connection streams) at once: a shared connection sends them when it
        opens, instead of one request per symbol."""
        ...

    def set_book_snapshot_interval(self, seconds: float) -> None:
        """How often (exchange time) an incremental book's full snapshot is stored from the
        book the adapter keeps; a venue without incremental books ignores it."""
        ...

    def route_key(self, symbol: str) -> bytes:
        """The key frame_route() gives the frames about `symbol` (a configured symbol)."""
        ...

    def frame_route(self, frame: bytes) -> bytes | None:
        """The route key of the symbol a received frame is about, found without parsing it
        when the frame has the venue's usual shape; None for frames about no symbol (pongs,
        notices, answers by request id). Shared connections route frames by it."""
        ...

    def subscriptions(
        self,
        symbol: str,
        data_types: Sequence[DataType],
        channels: Mapping[str, str],
        urls: Mapping[str, str],
        credentials: ExchangeCredentials | None = None,
    ) -> list[Subscription]:
        """Return the connections to open for one symbol; raise ConfigError on bad settings
        (a data type that needs a login without `credentials` among them)."""
        ...

    def parse(self, frame: str | bytes, store_raw_data: bool) -> FrameResult:
        """Turn one received frame into rows or a control signal; raise FrameError(reason).

        A bad item of a good frame is refused alone (FrameResult.rejected). The reference
        behaviour: parse_batch must give the same rows, controls and rejections.
        """
        ...

    def parse_batch(self, frames: Sequence[str | bytes], store_raw_data: bool) -> ParsedBatch:
        """Parse many frames at once (the collector's hot path); never raises FrameError:
        a malformed frame lands in `rejected` with its reason and adds no row, a malformed
        item of a good frame lands there alone."""
        ...
