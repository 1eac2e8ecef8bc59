"""Which link carries a collector's subscription: many collectors, few connections.

One pool per event loop. A collector's Subscription joins a link of the same exchange,
URL and connection settings (every CollectorParams field a connection uses, and
auto_restart) that has room: fewer than pairs_per_connection members, and at most the
venue's streams per connection (the adapter's max_streams_per_connection, e.g. Binance
1024) once it joins. Two collectors of one symbol never share a link (frames are routed
by symbol). Without room a new link opens (at the venue's connect rate). A link that lost
its last member, or gave up, leaves the pool.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from typing import Any

from ingest.collector.batch_receiver import BatchClientConnection, connect
from ingest.collector.link import Link
from ingest.collector.link_member import Dial, Member, Receiver
from ingest.collector.params import CollectorParams
from ingest.exchanges.base import ExchangeAdapter, Subscription
from ingest.model import ExchangeCollectorConfig

# CollectorParams fields that are not the connection's: members may differ in them.
_MEMBER_ONLY = frozenset(
    {"name", "channels", "max_silence", "buffer_size", "callback_timeout", "dead_letters_per_hour"}
)

_LinkKey = tuple[Any, ...]


def _connection_key(exchange: str, url: str, params: CollectorParams, auto_restart: bool) -> _LinkKey:
    fields = params.model_dump(exclude=set(_MEMBER_ONLY))
    return (exchange, url, auto_restart, repr(sorted(fields.items())))


class LinkPool:
    """The links of one event loop, by connection key."""

    def __init__(self) -> None:
        self._links: dict[_LinkKey, list[Link]] = {}
        self._numbers: dict[str, itertools.count[int]] = {}
        # How links open connections (batch_receiver.connect); tests put a faulty network here.
        self.dial: Dial = connect

    async def _dial(self, url: str, **options: Any) -> BatchClientConnection:
        return await self.dial(url, **options)

    def join(
        self,
        receiver: Receiver,
        sub: Subscription,
        key: bytes,
        adapter: ExchangeAdapter,
        params: CollectorParams,
        config: ExchangeCollectorConfig,
    ) -> Member:
        """Put `sub` on a link with room, opening one if none has."""
        exchange, auto_restart = config.exchange, config.auto_restart
        link_key = _connection_key(exchange, sub.url, params, auto_restart)
        links = self._links.setdefault(link_key, [])
        max_streams = adapter.max_streams_per_connection
        for link in links:
            if link.has_room(sub, key, max_streams):
                return link.add(receiver, sub, key)
        number = next(self._numbers.setdefault(exchange, itertools.count(1)))
        link = Link(
            f"{exchange}-connection-{number}",
            exchange,
            sub.url,
            adapter,
            params,
            auto_restart,
            dial=self._dial,
            on_empty=lambda ended: self._forget(link_key, ended),
        )
        links.append(link)
        return link.add(receiver, sub, key)

    def _forget(self, link_key: _LinkKey, link: Link) -> None:
        links = self._links.get(link_key)
        if links is not None and link in links:
            links.remove(link)
            if not links:
                del self._links[link_key]


_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LinkPool] = weakref.WeakKeyDictionary()


def pool_for_loop() -> LinkPool:
    """The running event loop's pool."""
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None:
        pool = _POOLS[loop] = LinkPool()
    return pool
