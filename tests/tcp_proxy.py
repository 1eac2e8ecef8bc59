"""A TCP proxy for fault tests: forwards between clients and one server, and can go silent.

A stalled connection stops forwarding in both directions without closing anything: the
bytes are read (the kernel acknowledges them, as a NAT that forgot the connection does
not) and held. `stall()` stalls every connection (new ones too), `stall_during_copy(after)`
only the connection whose client has sent `after` bytes after a COPY statement (mid-COPY,
for sure), the others and new ones carry on: a half-open connection. `resume()` forwards
what was held, then carries on.
"""

from __future__ import annotations

import asyncio
import contextlib


class StallingProxy:
    """Listens on `listen_host`, forwards every connection to (`host`, `port`)."""

    def __init__(self, host: str, port: int, listen_host: str = "127.0.0.1") -> None:
        self._target = (host, port)
        self._listen_host = listen_host
        self._flowing = asyncio.Event()  # cleared by stall(): every connection
        self._flowing.set()
        self._gates: list[asyncio.Event] = []  # one per connection, cleared by the COPY trigger
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._copy_trigger: int | None = None
        self.stalled_at: float | None = None  # loop time of the last stall
        self.connections = 0

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set() or not all(g.is_set() for g in self._gates)

    async def start(self) -> int:
        """Start listening; returns the port."""
        self._server = await asyncio.start_server(self._serve, self._listen_host, 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self.resume()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    def stall(self) -> None:
        self.stalled_at = asyncio.get_running_loop().time()
        self._flowing.clear()

    def resume(self) -> None:
        self._copy_trigger = None
        self._flowing.set()
        for gate in self._gates:
            gate.set()

    def stall_during_copy(self, after: int) -> None:
        """Stall once a client has sent `after` bytes following a COPY statement."""
        self._copy_trigger = after

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.close()
            return
        gate = asyncio.Event()
        gate.set()
        self._gates.append(gate)
        for task in (
            asyncio.create_task(self._pipe(client_r, server_w, gate, from_client=True)),
            asyncio.create_task(self._pipe(server_r, client_w, gate, from_client=False)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        gate: asyncio.Event,
        *,
        from_client: bool,
    ) -> None:
        copy_bytes: int | None = None  # bytes since the COPY statement, while armed
        try:
            while data := await reader.read(65536):
                if from_client and self._copy_trigger is not None:
                    if copy_bytes is None and b"COPY " in data:
                        copy_bytes = len(data) - data.index(b"COPY ")
                    elif copy_bytes is not None:
                        copy_bytes += len(data)
                    if copy_bytes is not None and copy_bytes >= self._copy_trigger:
                        # Forward part of this chunk, then go silent with the rest held.
                        half = len(data) // 2
                        await self._forward(writer, data[:half])
                        self._copy_trigger = None
                        self.stalled_at = asyncio.get_running_loop().time()
                        gate.clear()
                        data = data[half:]
                        copy_bytes = None
                await self._open(gate)
                await self._forward(writer, data)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                await self._open(gate)  # a close is held like any byte
                writer.close()

    async def _open(self, gate: asyncio.Event) -> None:
        while not (self._flowing.is_set() and gate.is_set()):
            await self._flowing.wait()
            await gate.wait()

    @staticmethod
    async def _forward(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
