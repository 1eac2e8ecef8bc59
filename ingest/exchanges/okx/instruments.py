"""OKX instrument metadata: GET /api/v5/public/instruments, one request per instType.

Answer: {"code": "0", "msg": "", "data": [{instType, instId, baseCcy, quoteCcy, settleCcy,
uly, instFamily, ctType, ctVal, ctMult, ctValCcy, lotSz, tickSz, ...}]}; "" for fields that do
not apply (contract fields of SPOT; baseCcy/quoteCcy of SWAP/FUTURES, whose currencies are the
two parts of `uly`, e.g. "BTC-USD"). OKX's unit of `sz` in trades is the contract for SWAP and
FUTURES: one contract is ctVal * ctMult of ctValCcy (linear: the base currency, inverse: the
quote currency). MARGIN shares SPOT's instruments and OPTION trades are not collected, so
those types are not loaded. The public endpoint needs no key; OKX allows 20 requests / 2 s.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from ingest.errors import ExchangeError
from ingest.exchanges.okx.channels import EXCHANGE
from ingest.instruments.model import InstrumentRequest, InstrumentRow

logger = logging.getLogger(__name__)

DEFAULT_REST_URL = "https://www.okx.com"
INSTRUMENTS_PATH = "/api/v5/public/instruments"
INSTRUMENT_TYPES = ("SPOT", "SWAP", "FUTURES")
CONTRACT_TYPES = frozenset({"linear", "inverse"})


def _text(item: dict[str, object], field: str) -> str | None:
    value = item.get(field)
    return value if type(value) is str and value != "" else None


def _positive(value: str | None) -> bool:
    try:
        number = Decimal(value) if value is not None else None
    except InvalidOperation:
        return False
    return number is not None and number.is_finite() and number > 0


def instrument_row(item: object) -> InstrumentRow | None:
    """The row of one OKX instrument object; None when it is not usable (logged by the caller)."""
    if type(item) is not dict:
        return None
    inst_type, symbol = _text(item, "instType"), _text(item, "instId")
    if inst_type not in INSTRUMENT_TYPES or symbol is None:
        return None
    base, quote = _text(item, "baseCcy"), _text(item, "quoteCcy")
    contract_type = ct_val = ct_mult = None
    if inst_type != "SPOT":
        contract_type, ct_val, ct_mult = _text(item, "ctType"), _text(item, "ctVal"), _text(item, "ctMult")
        if contract_type not in CONTRACT_TYPES or not _positive(ct_val) or not _positive(ct_mult):
            return None  # a contract without its size would give wrong volumes: keep none
        underlying = (_text(item, "uly") or _text(item, "instFamily") or "").split("-")
        if base is None and quote is None and len(underlying) == 2:
            base, quote = underlying
    return InstrumentRow(
        exchange=EXCHANGE,
        symbol=symbol,
        instrument_type=inst_type.lower(),
        base_currency=base,
        quote_currency=quote,
        settle_currency=_text(item, "settleCcy"),
        contract_type=contract_type,
        contract_value=ct_val,
        contract_value_currency=_text(item, "ctValCcy"),
        contract_multiplier=ct_mult,
        lot_size=_text(item, "lotSz") if _positive(_text(item, "lotSz")) else None,
        tick_size=_text(item, "tickSz") if _positive(_text(item, "tickSz")) else None,
    )


class OkxInstrumentSource:
    """InstrumentSource for OKX (see ingest.instruments)."""

    default_base_url = DEFAULT_REST_URL

    def requests(self) -> list[InstrumentRequest]:
        return [InstrumentRequest(INSTRUMENTS_PATH, {"instType": t}) for t in INSTRUMENT_TYPES]

    def parse(self, payload: object) -> list[InstrumentRow]:
        if type(payload) is not dict:
            raise ExchangeError(f"{INSTRUMENTS_PATH}: expected a JSON object, got {type(payload).__name__}")
        code, data = payload.get("code"), payload.get("data")
        if code != "0":
            msg = payload.get("msg")
            raise ExchangeError(f"{INSTRUMENTS_PATH}: OKX error code {code!r:.20}: {msg!r:.200}")
        if type(data) is not list:
            raise ExchangeError(f"{INSTRUMENTS_PATH}: field 'data' is not a list")
        rows = [row for row in map(instrument_row, data) if row is not None]
        if len(rows) < len(data):
            logger.warning(
                "%s: %d of %d instruments skipped (unknown type, or a contract without ctType/ctVal/ctMult)",
                INSTRUMENTS_PATH,
                len(data) - len(rows),
                len(data),
            )
        return rows
