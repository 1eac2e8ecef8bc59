"""The exchange config file (config/okx.json, config/binance.json): timings, trading pairs,
the venue's endpoints (its own connection model); and the same settings as one collector's
`custom_params` (CollectorParams).

Every rule for a setting is written once, here, as a field type: the config file
(ConnectionSettings, DataCollectionSettings) and the collectors' custom_params
(CollectorParams, validated by ingest.collector.params) use the same types.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, Field, field_validator, model_validator

from ingest.config.base import StrictModel
from ingest.config.urls import check_http_url, check_ws_url
from ingest.model import DataType

WsUrl = Annotated[str, AfterValidator(check_ws_url)]
HttpUrl = Annotated[str, AfterValidator(check_http_url)]
PositiveFloat = Annotated[float, Field(gt=0)]
PositiveInt = Annotated[int, Field(gt=0)]
ReconnectAttempts = Annotated[int, Field(ge=0)]
Linger = Annotated[float, Field(ge=0, le=0.1)]
MessageBytes = Annotated[int, Field(ge=1024, le=2**30)]
DeadLettersPerHour = Annotated[int, Field(ge=0)]
ConnectionAge = Annotated[float, Field(ge=1)]
MessageRate = Annotated[float, Field(gt=0)]
PairsPerConnection = Annotated[int, Field(ge=1, le=1024)]


class ConnectRate(StrictModel):
    """At most `attempts` connection attempts in any `seconds` (a venue's per-IP limit)."""

    attempts: PositiveInt
    seconds: PositiveFloat


def _check_delays(reconnect_delay: float, max_reconnect_delay: float) -> None:
    if max_reconnect_delay < reconnect_delay:
        raise ValueError(
            f"max_reconnect_delay ({max_reconnect_delay}) must be >= reconnect_delay ({reconnect_delay})"
        )


class ConnectionSettings(StrictModel):
    """The venue-neutral part of the `connection` section: keep-alive, reconnect and
    receive timings, and the venue's limits as settings. Each venue subclasses it with its
    endpoint keys (ingest.exchanges.<venue>.settings) and may change defaults; the file is
    validated against the venue's subclass (ingest.config.loader)."""

    ping_interval: PositiveFloat = 25.0
    pong_timeout: PositiveFloat = 10.0
    max_reconnect_attempts: ReconnectAttempts = 5
    reconnect_delay: PositiveFloat = 5.0
    max_reconnect_delay: PositiveFloat = 60.0
    receive_linger: Linger = 0.02
    # websockets' max_size: a bigger message closes the connection with 1009 (counted, its
    # first bytes dead-lettered). 1 MiB is 1,000x the largest frame of the channels parsed.
    max_message_bytes: MessageBytes = 2**20
    # Seconds after which a connection is replaced, make before break (a venue that closes
    # connections at a fixed age sets it below that age); None: never.
    max_connection_age: ConnectionAge | None = None
    # Frames the client may send on one connection per second (subscribe frames and pings);
    # the collector paces its frames to it. None: no limit.
    max_messages_per_second: MessageRate | None = None
    # Connection attempts to the venue's host, shared by every collector of the process
    # (ingest.collector.connect_rate). None: no limit.
    connect_rate: ConnectRate | None = None
    # Trading pairs whose streams share one connection to an endpoint (1: one connection
    # per pair). A venue bounds it further by its streams per connection (Binance 1024).
    pairs_per_connection: PairsPerConnection = 50

    @model_validator(mode="after")
    def _delays_ordered(self) -> ConnectionSettings:
        _check_delays(self.reconnect_delay, self.max_reconnect_delay)
        return self

    def ws_urls(self) -> dict[str, str]:
        """The endpoints by the names the venue's adapter knows them ("public", ...); the
        first is the main one (its host serves the venue's REST API in the simulator)."""
        raise NotImplementedError(f"{type(self).__name__} names no endpoint: use a venue's connection model")

    def main_ws_url(self) -> str:
        """The first of ws_urls()."""
        return next(iter(self.ws_urls().values()))


class DataCollectionSettings(StrictModel):
    """What collectors keep and how closely they are watched."""

    store_raw_data: bool = True
    health_check_interval: PositiveFloat = 30.0
    auto_restart: bool = True
    buffer_size: PositiveInt = 1000
    max_silence: PositiveFloat = 60.0
    dead_letters_per_hour: DeadLettersPerHour = 1000
    # Seconds between full snapshots stored from an incremental book (OKX `books`).
    book_snapshot_interval: PositiveFloat = 60.0


class InstrumentSettings(StrictModel):
    """Instrument metadata (contract sizes for candle volumes), loaded over the exchange's REST API."""

    enabled: bool = True
    # None: the exchange's public REST host, or http://host:port of the main WebSocket URL
    # when that points at this machine (the simulator serves both on one port).
    rest_url: HttpUrl | None = None
    refresh_interval: Annotated[float, Field(ge=60)] = 3600.0
    timeout: PositiveFloat = 10.0


class GapFillSettings(StrictModel):
    """Gap filling from the exchange's REST trade history (docs/gaps.md): after every reconnect
    and at start-up, the trades between the last one stored and the first one received live."""

    enabled: bool = True
    # None: as for instruments (the exchange's public REST host, or the simulator's port).
    rest_url: HttpUrl | None = None
    timeout: PositiveFloat = 10.0
    # Seconds of REST failing before a gap is recorded as not filled for now (its candles
    # show again); it is tried again every retry_interval seconds while the service runs.
    give_up_after: Annotated[float, Field(ge=1)] = 300.0
    retry_interval: Annotated[float, Field(ge=1)] = 600.0


class TradingPair(StrictModel):
    """One symbol to collect, the data types wanted and the exchange channel for each."""

    symbol: Annotated[str, Field(min_length=1, max_length=50)]
    enabled: bool = True
    data_types: Annotated[list[DataType], Field(min_length=1)]
    channels: dict[str, str] = Field(default_factory=dict)

    @field_validator("data_types", mode="before")
    @classmethod
    def _data_types_from_strings(cls, value: object) -> object:
        # Strict mode refuses enum values given as their string; JSON only has strings.
        if not isinstance(value, list):
            return value
        known = {member.value: member for member in DataType}
        unknown = [item for item in value if isinstance(item, str) and item not in known]
        if unknown:
            raise ValueError(f"data types from {', '.join(sorted(known))} (unknown: {', '.join(unknown)})")
        return [known[item] if isinstance(item, str) else item for item in value]

    @field_validator("data_types")
    @classmethod
    def _no_duplicates(cls, value: list[DataType]) -> list[DataType]:
        if len(set(value)) != len(value):
            raise ValueError("each data type at most once")
        return value


ConnectionT = TypeVar("ConnectionT", bound=ConnectionSettings)


class ExchangeFile(StrictModel, Generic[ConnectionT]):
    """The whole exchange config file; `connection` is the venue's own model (read files
    with ingest.config.loader, which picks it from the `exchange` key)."""

    exchange: Annotated[str, Field(min_length=1)]
    connection: ConnectionT
    data_collection: DataCollectionSettings = DataCollectionSettings()
    instruments: InstrumentSettings = InstrumentSettings()
    gap_fill: GapFillSettings = GapFillSettings()
    trading_pairs: Annotated[list[TradingPair], Field(min_length=1)]

    @field_validator("exchange")
    @classmethod
    def _lowercase(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _unique_symbols(self) -> ExchangeFile[ConnectionT]:
        symbols = [pair.symbol for pair in self.trading_pairs]
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"trading_pairs lists {', '.join(duplicates)} more than once")
        return self

    def enabled_pairs(self) -> list[TradingPair]:
        """The trading pairs with enabled=true, in file order."""
        return [pair for pair in self.trading_pairs if pair.enabled]


class CollectorParams(StrictModel):
    """One collector's connection and health settings (ExchangeCollectorConfig.custom_params).

    Defaults match the config file's. `sink` is not a setting: ingest.collector.params
    takes it out before validating.
    """

    name: Annotated[str, Field(min_length=1)]
    urls: dict[str, WsUrl] = Field(default_factory=dict)
    channels: dict[str, str] = Field(default_factory=dict)
    ping_interval: PositiveFloat = 25.0
    pong_timeout: PositiveFloat = 10.0
    max_reconnect_attempts: ReconnectAttempts = 5
    reconnect_delay: PositiveFloat = 5.0
    max_reconnect_delay: PositiveFloat = 60.0
    max_silence: PositiveFloat = 60.0
    buffer_size: PositiveInt = 1000
    callback_timeout: PositiveFloat = 5.0
    receive_linger: Linger = 0.02
    max_message_bytes: MessageBytes = 2**20
    dead_letters_per_hour: DeadLettersPerHour = 1000
    max_connection_age: ConnectionAge | None = None
    max_messages_per_second: MessageRate | None = None
    connect_rate: ConnectRate | None = None
    pairs_per_connection: PairsPerConnection = 50
    # Seconds (exchange time) between the full snapshots stored from an incremental book
    # the collector keeps (OKX `books`): a rebuild replays at most this much of updates.
    book_snapshot_interval: PositiveFloat = 60.0

    @model_validator(mode="after")
    def _delays_ordered(self) -> CollectorParams:
        _check_delays(self.reconnect_delay, self.max_reconnect_delay)
        return self


def collector_params_from(connection: ConnectionSettings, data: DataCollectionSettings) -> dict[str, Any]:
    """The custom_params keys a config file's sections give every collector of the file."""
    return {
        "urls": connection.ws_urls(),
        "ping_interval": connection.ping_interval,
        "pong_timeout": connection.pong_timeout,
        "max_reconnect_attempts": connection.max_reconnect_attempts,
        "reconnect_delay": connection.reconnect_delay,
        "max_reconnect_delay": connection.max_reconnect_delay,
        "receive_linger": connection.receive_linger,
        "max_message_bytes": connection.max_message_bytes,
        "max_connection_age": connection.max_connection_age,
        "max_messages_per_second": connection.max_messages_per_second,
        "connect_rate": connection.connect_rate,
        "pairs_per_connection": connection.pairs_per_connection,
        "max_silence": data.max_silence,
        "buffer_size": data.buffer_size,
        "dead_letters_per_hour": data.dead_letters_per_hour,
        "book_snapshot_interval": data.book_snapshot_interval,
    }
