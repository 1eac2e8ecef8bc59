"""OKX's part of the `connection` section: its three WebSocket endpoints."""

from __future__ import annotations

from ingest.config.exchange import ConnectionSettings, ConnectRate, WsUrl
from ingest.exchanges.okx.channels import BUSINESS_URL_KEY, PRIVATE_URL_KEY, PUBLIC_URL_KEY


class OkxConnection(ConnectionSettings):
    """/ws/v5/public (trades, books, tickers), /ws/v5/business (trades-all, candles) and
    /ws/v5/private (balances, after a login; used only by an `account` pair).

    OKX documents no connection lifetime (it announces a close with notice 64008) and limits
    subscribe requests per hour, not per second: those two limits stay off. It allows 3
    connection requests a second per IP."""

    public_ws_url: WsUrl
    business_ws_url: WsUrl = "wss://ws.okx.com:8443/ws/v5/business"
    private_ws_url: WsUrl = "wss://ws.okx.com:8443/ws/v5/private"
    connect_rate: ConnectRate | None = ConnectRate(attempts=3, seconds=1.0)

    def ws_urls(self) -> dict[str, str]:
        return {
            PUBLIC_URL_KEY: self.public_ws_url,
            BUSINESS_URL_KEY: self.business_ws_url,
            PRIVATE_URL_KEY: self.private_ws_url,
        }
