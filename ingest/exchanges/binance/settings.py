"""Binance's part of the `connection` section: its endpoint and its connection limits."""

from __future__ import annotations

from ingest.config.exchange import ConnectionAge, ConnectionSettings, ConnectRate, MessageRate, WsUrl
from ingest.exchanges.binance.streams import PUBLIC_URL_KEY

# Binance closes a connection 24 h after it opened; replacing it 30 min before leaves room
# for a replacement that needs retries.
LIFETIME_MARGIN = 1800.0
BINANCE_LIFETIME = 24 * 3600.0


class BinanceConnection(ConnectionSettings):
    """wss://stream.binance.com:9443 (or the market-data-only wss://data-stream.binance.vision).

    Binance's WebSocket limits ("WebSocket Limits" of its stream documentation): a
    connection lives 24 h; it may receive at most 5 messages a second from the client
    (subscribe frames, pings and pongs alike; Binance closes it otherwise); it carries at
    most 1024 streams; one IP may make 300 connection attempts in 5 minutes. The defaults
    keep below the first two and at the last; the stream limit is the adapter's
    (streams.MAX_STREAMS_PER_CONNECTION)."""

    ws_url: WsUrl = "wss://stream.binance.com:9443"
    max_connection_age: ConnectionAge | None = BINANCE_LIFETIME - LIFETIME_MARGIN
    # 4, not 5: the pongs websockets sends to Binance's pings count too.
    max_messages_per_second: MessageRate | None = 4.0
    connect_rate: ConnectRate | None = ConnectRate(attempts=300, seconds=300.0)

    def ws_urls(self) -> dict[str, str]:
        return {PUBLIC_URL_KEY: self.ws_url}
