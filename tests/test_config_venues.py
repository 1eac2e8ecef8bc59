"""Each venue owns its part of the config (ingest.exchanges.venue): the `exchange` key picks
the venue, whose connection model validates its endpoint keys and limits; the generic part
stays generic. Also the venue's symbol spelling and its credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ingest.collector.from_config import collector_configs
from ingest.config import ConfigFileError, load_exchange_file, parse_exchange_file, read_exchange_credentials
from ingest.errors import ConfigError
from ingest.exchanges.binance.settings import BinanceConnection
from ingest.exchanges.okx.settings import OkxConnection
from ingest.exchanges.registry import get_venue, supported_exchanges
from ingest.redact import redact_text

CONFIG = Path(__file__).resolve().parents[1] / "config"


def binance_file(**connection: Any) -> dict[str, Any]:
    return {
        "exchange": "binance",
        "connection": connection,
        "trading_pairs": [{"symbol": "BTC-USDT", "data_types": ["trade"]}],
    }


def test_the_shipped_files_load_with_their_venues_models() -> None:
    okx = load_exchange_file(CONFIG / "okx.json")
    binance = load_exchange_file(CONFIG / "binance.json")
    assert type(okx.connection) is OkxConnection
    assert type(binance.connection) is BinanceConnection
    assert binance.connection.ws_urls() == {"public": "wss://stream.binance.com:9443"}
    # Binance's documented limits are the defaults: replaced before its 24 h close, paced
    # below its 5 messages a second.
    assert binance.connection.max_connection_age == 24 * 3600 - 1800
    assert binance.connection.max_messages_per_second == 4.0
    assert okx.connection.max_connection_age is None
    assert okx.connection.max_messages_per_second is None
    assert supported_exchanges() == ["binance", "okx"]


def test_a_key_of_another_venue_is_named_with_the_venues_own_keys() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_exchange_file(binance_file(public_ws_url="wss://ws.okx.com:8443/ws/v5/public"))
    [problem] = info.value.problems
    assert problem.key == "connection.public_ws_url"
    assert "ws_url" in problem.hint
    assert "business_ws_url" not in problem.hint


def test_a_venue_key_gets_the_generic_rules() -> None:
    with pytest.raises(ConfigFileError) as info:
        parse_exchange_file(binance_file(ws_url="ws://stream.binance.com:9443", ping_interval=0))
    assert {p.key for p in info.value.problems} == {"connection.ws_url", "connection.ping_interval"}
    with pytest.raises(ConfigFileError) as info:
        parse_exchange_file(binance_file(max_messages_per_second=0, max_connection_age=0.5))
    assert {p.key for p in info.value.problems} == {
        "connection.max_messages_per_second",
        "connection.max_connection_age",
    }


@pytest.mark.parametrize("exchange", [None, "kraken", 7])
def test_an_unknown_or_missing_exchange_names_the_key_and_the_choices(exchange: object) -> None:
    data = binance_file()
    if exchange is None:
        del data["exchange"]
    else:
        data["exchange"] = exchange
    with pytest.raises(ConfigFileError) as info:
        parse_exchange_file(data)
    [problem] = info.value.problems
    assert problem.key == "exchange"
    assert problem.expected == "one of binance, okx"


def test_collectors_carry_the_symbol_as_binance_rows_spell_it() -> None:
    file = parse_exchange_file(
        {
            "exchange": "binance",
            "connection": {},
            "trading_pairs": [
                {"symbol": "BTC-USDT", "data_types": ["trade"]},
                {"symbol": "eth/usdt", "data_types": ["trade", "ticker"]},
            ],
        }
    )
    configs = collector_configs(file)
    assert [(c.symbol, c.custom_params["name"]) for c in configs] == [
        ("BTCUSDT", "binance-BTCUSDT"),
        ("ETHUSDT", "binance-ETHUSDT"),
    ]
    assert configs[0].custom_params["max_messages_per_second"] == 4.0
    assert configs[0].custom_params["urls"] == {"public": "wss://stream.binance.com:9443"}
    okx = collector_configs(load_exchange_file(CONFIG / "okx.json"))
    assert [c.symbol for c in okx] == ["BTC-USDT", "ETH-USDT"]  # OKX rows spell them as written


def test_two_spellings_of_one_binance_symbol_are_refused() -> None:
    file = parse_exchange_file(
        {
            "exchange": "binance",
            "connection": {},
            "trading_pairs": [
                {"symbol": "BTC-USDT", "data_types": ["trade"]},
                {"symbol": "BTCUSDT", "data_types": ["ticker"]},
            ],
        }
    )
    with pytest.raises(ConfigError, match="'BTC-USDT' and 'BTCUSDT' are both BTCUSDT"):
        collector_configs(file)


def test_binance_credentials_are_a_key_and_a_secret_masked_everywhere() -> None:
    names = get_venue("binance").credentials
    assert names == ("BINANCE_API_KEY", "BINANCE_API_SECRET")
    env = {"BINANCE_API_KEY": "bnb-key-0123456789abcdef", "BINANCE_API_SECRET": "bnb-secret-fedcba9876"}
    creds = read_exchange_credentials(names, environ=env)
    assert creds is not None
    assert (creds.api_key, creds.api_secret, creds.passphrase) == (*env.values(), None)
    for value in env.values():
        assert value not in repr(creds)
        assert value not in redact_text(f"signing with {value}")
    with pytest.raises(ConfigError, match="BINANCE_API_SECRET not set") as info:
        read_exchange_credentials(names, environ={"BINANCE_API_KEY": "bnb-key-0123456789abcdef"})
    assert "bnb-key-0123456789abcdef" not in str(info.value)
