"""The service's HTTP endpoints (/metrics, /healthz, /readyz): where they listen."""

from __future__ import annotations

import ipaddress

from pydantic import field_validator

from ingest.config.base import StrictModel

DEFAULT_LISTEN = "127.0.0.1:9108"


class HttpSettings(StrictModel):
    """`listen`: "host:port" (an IP address; port 0 picks a free one, logged at start), or
    null for no endpoints. Loopback by default; "0.0.0.0:9108" in a container (compose)."""

    listen: str | None = DEFAULT_LISTEN

    @field_validator("listen")
    @classmethod
    def _host_and_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        try:
            ipaddress.ip_address(host.strip("[]"))
            number = int(port)
        except ValueError:
            number = -1
        if not sep or not 0 <= number <= 65535:
            raise ValueError(
                f'"IP:port" such as "{DEFAULT_LISTEN}" or "0.0.0.0:9108", or null for no endpoints'
            )
        return value

    @property
    def host(self) -> str:
        return (self.listen or "").rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int((self.listen or ":0").rpartition(":")[2])
