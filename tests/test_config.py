"""Config models and loaders: valid files load, bad files fail naming file, key and fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ingest.collector import ExchangeFactory
from ingest.collector.params import parse_params
from ingest.config import (
    ConfigFileError,
    load_database_file,
    load_exchange_file,
    load_logging_file,
    read_exchange_credentials,
)
from ingest.errors import ConfigError
from ingest.model import DataType, ExchangeCollectorConfig
from ingest.redact import redact_text

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "s3cret-Pa55word"


def exchange_doc(**connection: Any) -> dict[str, Any]:
    """The spec's example exchange file, with connection keys replaced or added."""
    return {
        "exchange": "okx",
        "connection": {
            "public_ws_url": "wss://ws.okx.com:8443/ws/v5/public",
            "ping_interval": 25.0,
            "pong_timeout": 10.0,
            "max_reconnect_attempts": 5,
            "reconnect_delay": 5.0,
            **connection,
        },
        "data_collection": {
            "store_raw_data": True,
            "health_check_interval": 30.0,
            "auto_restart": True,
            "buffer_size": 1000,
        },
        "trading_pairs": [
            {
                "symbol": "BTC-USDT",
                "enabled": True,
                "data_types": ["trade", "orderbook"],
                "channels": {"trades": "trades", "orderbook": "books5", "ticker": "tickers"},
            }
        ],
    }


def write(tmp_path: Path, name: str, doc: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_repo_config_files_load_with_their_values() -> None:
    db = load_database_file(REPO / "config/database.json", environ={})
    assert db.database.conninfo() == "postgresql://tcpd@timescaledb:5432/tcpd?sslmode=disable"
    assert (db.database.pool_size, db.database.max_overflow) == (10, 20)
    assert db.tables.dead_letters == "dead_letters"
    okx = load_exchange_file(REPO / "config/okx.json")
    assert [p.symbol for p in okx.enabled_pairs()] == ["BTC-USDT", "ETH-USDT"]
    assert okx.trading_pairs[0].data_types == [DataType.TRADE, DataType.ORDERBOOK, DataType.TICKER]
    assert okx.connection.business_ws_url == "wss://ws.okx.com:8443/ws/v5/business"
    logs = load_logging_file(REPO / "config/logging.json")
    assert logs.level == "INFO"
    assert logs.components.websocket_clients == "WARNING"


def test_spec_example_gets_our_defaults(tmp_path: Path) -> None:
    config = load_exchange_file(write(tmp_path, "okx.json", exchange_doc()))
    assert config.connection.max_reconnect_delay == 60.0
    assert config.data_collection.max_silence == 60.0
    assert config.trading_pairs[0].channels["orderbook"] == "books5"


def test_misspelt_key_names_file_path_and_closest_key(tmp_path: Path) -> None:
    doc = exchange_doc(ping_intervl=25.0)
    del doc["connection"]["ping_interval"]
    path = write(tmp_path, "okx.json", doc)
    with pytest.raises(ConfigFileError) as info:
        load_exchange_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "connection.ping_intervl" in message
    assert "did you mean 'ping_interval'?" in message
    assert [p.key for p in info.value.problems] == ["connection.ping_intervl"]


def test_wrong_type_says_expected_and_found(tmp_path: Path) -> None:
    doc = exchange_doc(pong_timeout="ten")
    doc["trading_pairs"][0]["enabled"] = "yes"
    with pytest.raises(ConfigFileError) as info:
        load_exchange_file(write(tmp_path, "okx.json", doc))
    problems = {p.key: p for p in info.value.problems}
    assert set(problems) == {"connection.pong_timeout", "trading_pairs[0].enabled"}
    assert problems["connection.pong_timeout"].found == "'ten'"
    assert "number" in problems["connection.pong_timeout"].expected
    assert "boolean" in problems["trading_pairs[0].enabled"].expected


@pytest.mark.parametrize("linger", [-0.001, 0.5, "5ms"])
def test_receive_linger_is_bounded(tmp_path: Path, linger: Any) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_exchange_file(write(tmp_path, "okx.json", exchange_doc(receive_linger=linger)))
    assert [p.key for p in info.value.problems] == ["connection.receive_linger"]


def test_receive_linger_default_and_off(tmp_path: Path) -> None:
    assert load_exchange_file(write(tmp_path, "a.json", exchange_doc())).connection.receive_linger == 0.02
    off = load_exchange_file(write(tmp_path, "b.json", exchange_doc(receive_linger=0)))
    assert off.connection.receive_linger == 0.0


def test_unknown_data_type_lists_the_known_ones(tmp_path: Path) -> None:
    doc = exchange_doc()
    doc["trading_pairs"][0]["data_types"] = ["trade", "orderbok"]
    with pytest.raises(ConfigFileError, match=r"unknown: orderbok") as info:
        load_exchange_file(write(tmp_path, "okx.json", doc))
    assert "orderbook" in info.value.problems[0].expected


def test_missing_required_key(tmp_path: Path) -> None:
    doc = exchange_doc()
    del doc["connection"]["public_ws_url"]
    with pytest.raises(ConfigFileError) as info:
        load_exchange_file(write(tmp_path, "okx.json", doc))
    assert info.value.problems[0].key == "connection.public_ws_url"
    assert "required" in info.value.problems[0].expected


@pytest.mark.parametrize(
    "url",
    ["ws://127.0.0.1:8765/ws/v5/public", "ws://localhost:1/x", "ws://[::1]:9/ws", "ws://127.9.9.9/x"],
)
def test_plain_ws_allowed_on_loopback(tmp_path: Path, url: str) -> None:
    config = load_exchange_file(write(tmp_path, "okx.json", exchange_doc(public_ws_url=url)))
    assert config.connection.public_ws_url == url


@pytest.mark.parametrize(
    "url", ["ws://ws.okx.com:8443/ws/v5/public", "ws://10.0.0.1/ws", "https://ws.okx.com/x", "wss://"]
)
def test_unencrypted_or_bad_ws_url_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigFileError) as info:
        load_exchange_file(write(tmp_path, "okx.json", exchange_doc(public_ws_url=url)))
    assert info.value.problems[0].key == "connection.public_ws_url"


def test_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "logging.json"
    path.write_text('{\n  "level": "INFO",\n  "format": }\n', encoding="utf-8")
    with pytest.raises(ConfigFileError, match=r"line 3, column 13") as info:
        load_logging_file(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_logging_file(tmp_path / "nope.json")


def test_logging_levels_and_format_checked(tmp_path: Path) -> None:
    ok = load_logging_file(
        write(tmp_path, "a.json", {"level": "debug", "components": {"data_collectors": "error"}})
    )
    assert (ok.level, ok.components.data_collectors) == ("DEBUG", "ERROR")
    with pytest.raises(ConfigFileError) as info:
        load_logging_file(write(tmp_path, "b.json", {"level": "LOUD", "format": "%(nope"}))
    assert {p.key for p in info.value.problems} == {"level", "format"}


def test_models_are_frozen(tmp_path: Path) -> None:
    config = load_exchange_file(write(tmp_path, "okx.json", exchange_doc()))
    with pytest.raises(ValidationError):
        config.connection.ping_interval = 1.0


def db_doc(url: str) -> dict[str, Any]:
    return {
        "database": {
            "url": url,
            "pool_size": 10,
            "max_overflow": 20,
            "pool_timeout": 30,
            "pool_recycle": 3600,
        },
        "tables": {
            "market_data": "market_data",
            "raw_trades": "raw_trades",
            "collector_status": "collector_status",
        },
    }


def test_env_url_overrides_file_and_explicit_url_wins(tmp_path: Path) -> None:
    path = write(tmp_path, "database.json", db_doc("postgresql://tcpd@timescaledb:5432/tcpd"))
    env_url = f"postgresql://tcpd:{PASSWORD}@db.internal:6432/prod"
    config = load_database_file(path, environ={"TCPD_DATABASE_URL": env_url})
    assert config.database.conninfo() == env_url
    assert config.database.pool_timeout == 30.0
    explicit = "postgresql://other@127.0.0.1:1/x"
    config = load_database_file(path, database_url=explicit, environ={"TCPD_DATABASE_URL": env_url})
    assert config.database.conninfo() == explicit
    assert load_database_file(path, environ={}).database.conninfo().endswith("@timescaledb:5432/tcpd")


def test_url_may_come_from_environment_alone(tmp_path: Path) -> None:
    path = write(tmp_path, "database.json", {"database": {"pool_size": 4}})
    config = load_database_file(path, environ={"TCPD_DATABASE_URL": "postgresql://a@127.0.0.1/x"})
    assert config.database.conninfo() == "postgresql://a@127.0.0.1/x"
    assert config.database.max_connections == 24
    with pytest.raises(ConfigFileError, match=r"database\.url: expected a value.*set TCPD_DATABASE_URL"):
        load_database_file(path, environ={})


def test_database_password_never_in_repr_str_or_dump(tmp_path: Path) -> None:
    url = f"postgresql://tcpd:{PASSWORD}@db.internal:6432/prod"
    config = load_database_file(write(tmp_path, "database.json", db_doc(url)), environ={})
    shown = [
        repr(config),
        str(config),
        str(config.database.url),
        config.model_dump_json(),
        str(config.model_dump()),
    ]
    for text in shown:
        assert PASSWORD not in text
    assert "db.internal:6432/prod" in repr(config)
    assert config.database.conninfo() == url


def test_bad_url_error_hides_password(tmp_path: Path) -> None:
    path = write(tmp_path, "database.json", db_doc("postgresql://tcpd@h/db"))
    bad = f"host=h password={PASSWORD} port=oops junk"
    with pytest.raises(ConfigFileError) as info:
        load_database_file(path, environ={"TCPD_DATABASE_URL": bad})
    assert PASSWORD not in str(info.value)
    assert "database.url (from TCPD_DATABASE_URL)" in str(info.value)


OKX_CREDENTIALS = ("OKX_API_KEY", "OKX_API_SECRET", "OKX_API_PASSPHRASE")


def test_exchange_credentials_masked_and_registered() -> None:
    env = {
        "OKX_API_KEY": "key-0123456789",
        "OKX_API_SECRET": "secret-ABCDEF987",
        "OKX_API_PASSPHRASE": "pass-phrase-42",
    }
    creds = read_exchange_credentials(OKX_CREDENTIALS, environ=env)
    assert creds is not None
    assert creds.api_secret == "secret-ABCDEF987"
    for value in env.values():
        assert value not in repr(creds)
        assert value not in str(creds)
        assert value not in redact_text(f"signing with {value} now")
    assert read_exchange_credentials(OKX_CREDENTIALS, environ={}) is None


def test_partial_credentials_refused_without_showing_them() -> None:
    with pytest.raises(ConfigError, match="OKX_API_PASSPHRASE") as info:
        read_exchange_credentials(
            OKX_CREDENTIALS, environ={"OKX_API_KEY": "key-0123456789", "OKX_API_SECRET": "sec-xyz-123"}
        )
    assert "key-0123456789" not in str(info.value)


# -- one validation: the config file and a collector's custom_params agree -----------------
URLS_BOTH_WAYS = [
    ("ws://127.0.0.1:8765/ws/v5/public", True),
    ("ws://localhost:1/x", True),
    ("ws://localhost.localdomain:8765/ws/v5/public", True),  # refused by custom_params before
    ("ws://LOCALHOST:1/x", True),
    ("ws://[::1]:9/ws", True),
    ("wss://ws.okx.com:8443/ws/v5/public", True),
    ("ws://ws.okx.com:8443/ws/v5/public", False),
    ("ws://10.0.0.1/ws", False),
    ("https://ws.okx.com/x", False),
    ("wss://ws.okx.com:port/x", False),  # custom_params accepted a port that is no number
]


def _file_accepts(tmp_path: Path, url: str) -> bool:
    try:
        load_exchange_file(write(tmp_path, "okx.json", exchange_doc(public_ws_url=url)))
    except ConfigFileError:
        return False
    return True


def _custom_params_refusal(url: str) -> str | None:
    """None if a collector's custom_params accept `url`, else the error message."""
    config = ExchangeCollectorConfig(
        "okx", "BTC-USDT", [DataType.TRADE], custom_params={"urls": {"public": url}}
    )
    try:
        ExchangeFactory.validate_config(config)
    except ConfigError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize(("url", "allowed"), URLS_BOTH_WAYS)
def test_file_and_custom_params_judge_a_url_alike(tmp_path: Path, url: str, allowed: bool) -> None:
    refusal = _custom_params_refusal(url)
    assert (_file_accepts(tmp_path, url), refusal is None) == (allowed, allowed)
    if refusal is not None:
        assert "custom_params.urls.public: expected " in refusal  # names the key and the fix


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("ping_interval", 0),
        ("receive_linger", 0.2),
        ("receive_linger", True),
        ("max_reconnect_attempts", -1),
        ("reconnect_delay", "5"),
    ],
)
def test_file_and_custom_params_refuse_the_same_values(tmp_path: Path, key: str, value: Any) -> None:
    with pytest.raises(ConfigFileError) as in_file:
        load_exchange_file(write(tmp_path, "okx.json", exchange_doc(**{key: value})))
    with pytest.raises(ConfigError) as in_params:
        parse_params("okx", "BTC-USDT", {key: value})
    expected = in_file.value.problems[0].expected
    assert f"collector okx/BTC-USDT: custom_params.{key}: expected {expected}, found {value!r}" == str(
        in_params.value
    )


def test_custom_params_delay_order_names_both_keys() -> None:
    with pytest.raises(
        ConfigError, match=r"custom_params: expected max_reconnect_delay \(1\.0\) must be >= "
    ):
        parse_params("okx", "BTC-USDT", {"reconnect_delay": 2.0, "max_reconnect_delay": 1.0})
    params = parse_params("okx", "BTC-USDT", {"urls": {"public": "ws://localhost.localdomain:1/x"}})
    assert (params.name, params.urls, params.receive_linger) == (
        "okx-BTC-USDT",
        {"public": "ws://localhost.localdomain:1/x"},
        0.02,
    )
