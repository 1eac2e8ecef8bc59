"""The simulator's REST side: GET /api/v5/public/instruments like OKX, on the WebSocket port.

Instruments are derived from the simulator's symbols by OKX's naming: "BTC-USDT" is SPOT,
"BTC-USDT-SWAP" a linear swap (USDT/USDC margined), "BTC-USD-SWAP" an inverse one, and
"BTC-USD-250328" a future (linear or inverse by the same rule). Contract values follow OKX's
for BTC and ETH (0.01 BTC, 0.1 ETH linear; 100 USD for BTC, 10 USD otherwise inverse), 1 for
any other base. Fault control: the next N requests can be answered with an error status
(e.g. 429 with a Retry-After) to test the loader's retries.
"""

from __future__ import annotations

from collections import deque
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from ingest.exchanges.okx.instruments import INSTRUMENT_TYPES, INSTRUMENTS_PATH

_LINEAR_QUOTES = frozenset({"USDT", "USDC"})
_LINEAR_CT_VAL = {"BTC": "0.01", "ETH": "0.1"}
_INVERSE_CT_VAL = {"BTC": "100"}


def okx_instrument(symbol: str) -> dict[str, str]:
    """The OKX instrument object the simulator lists for `symbol`."""
    parts = symbol.split("-")
    base, quote = parts[0], parts[1] if len(parts) > 1 else "USDT"
    if len(parts) < 3:
        return {
            "instType": "SPOT", "instId": symbol, "uly": "", "instFamily": "", "baseCcy": base,
            "quoteCcy": quote, "settleCcy": "", "ctVal": "", "ctMult": "", "ctValCcy": "", "ctType": "",
            "lotSz": "0.00000001", "tickSz": "0.1", "minSz": "0.00001", "state": "live",
        }  # fmt: skip
    linear = quote in _LINEAR_QUOTES
    ct_val = _LINEAR_CT_VAL.get(base, "1") if linear else _INVERSE_CT_VAL.get(base, "10")
    return {
        "instType": "SWAP" if parts[2] == "SWAP" else "FUTURES", "instId": symbol,
        "uly": f"{base}-{quote}", "instFamily": f"{base}-{quote}", "baseCcy": "", "quoteCcy": "",
        "settleCcy": quote if linear else base, "ctVal": ct_val, "ctMult": "1",
        "ctValCcy": base if linear else quote, "ctType": "linear" if linear else "inverse",
        "lotSz": "0.01" if linear else "1", "tickSz": "0.1", "minSz": "0.01", "state": "live",
    }  # fmt: skip


def json_response(status: HTTPStatus, body: bytes, extra: dict[str, str] | None = None) -> Response:
    headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
    headers["Connection"] = "close"
    for name, value in (extra or {}).items():
        headers[name] = value
    return Response(status.value, status.phrase, headers, body)


class InstrumentsEndpoint:
    """Answers GET /api/v5/public/instruments?instType=... for the simulator's symbols."""

    def __init__(self, symbols: tuple[str, ...]) -> None:
        self._instruments = [okx_instrument(s) for s in symbols]
        self._faults: deque[tuple[HTTPStatus, dict[str, str]]] = deque()
        self.requests: list[str] = []  # instType of every request, in order (faulted ones too)

    def fail_next(self, count: int, status: HTTPStatus, headers: dict[str, str] | None = None) -> None:
        """Answer the next `count` requests with `status` (and `headers`, e.g. Retry-After)."""
        self._faults.extend([(status, headers or {})] * count)

    def handles(self, request: Request) -> bool:
        return urlsplit(request.path).path == INSTRUMENTS_PATH

    def respond(self, request: Request) -> Response:
        query = parse_qs(urlsplit(request.path).query)
        inst_type = (query.get("instType") or [""])[0]
        self.requests.append(inst_type)
        if self._faults:
            status, headers = self._faults.popleft()
            body = orjson.dumps({"code": "50011", "msg": status.phrase, "data": []})
            return json_response(status, body, headers)
        if inst_type not in INSTRUMENT_TYPES:
            body = orjson.dumps({"code": "51000", "msg": "Parameter instType error", "data": []})
            return json_response(HTTPStatus.BAD_REQUEST, body)
        data = [i for i in self._instruments if i["instType"] == inst_type]
        return json_response(HTTPStatus.OK, orjson.dumps({"code": "0", "msg": "", "data": data}))
