"""A WebSocket replay for offline work and tests, beside the REST replay: a local server that
sends the frames it is given to every connected client and, on command, drops the
connections, sends a malformed frame, or floods.

It knows no exchange: the frames are the caller's, in the exchange's exact format. Where a
frame is not a recording it must be labelled SYNTHETIC by whoever made it (the test, the
demo's generator); this server adds nothing to a frame.

    with WebSocketReplay() as server:
        ...  # a client connects to server.url
        server.wait_for_clients(1)
        server.send([{"channel": "candle", "data": {...}}])
        server.drop()  # the client sees the connection closed, and reconnects

The faults a test makes with it: a dropped connection (:meth:`WebSocketReplay.drop`, no
closing handshake); a malformed frame (:meth:`WebSocketReplay.send` of a text that is not
JSON, or of an object that breaks the stream's contract); a stall (sending nothing while the
connection stays open, the server answering pings); a flood (:meth:`WebSocketReplay.send`
of a large batch, written as fast as the socket takes it: ``benchmarks/capture_flood.py``).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, serve


class WebSocketReplay:
    """A WebSocket server in a background thread, on ``127.0.0.1`` and a free port.

    Attributes:
        received: every text message clients sent (subscriptions), decoded, in order.
        connections_made: connections accepted so far.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self.received: list[Any] = []
        self.connections_made = 0
        self._clients: set[ServerConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self) -> WebSocketReplay:
        self._thread = threading.Thread(target=self._serve, name="ws-replay", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the WebSocket replay did not start within 10 s")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> WebSocketReplay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, self.host, self.port) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    async def _handler(self, connection: ServerConnection) -> None:
        self._clients.add(connection)
        self.connections_made += 1
        try:
            async for message in connection:
                try:
                    self.received.append(json.loads(message))
                except ValueError:
                    self.received.append(message)
        except Exception:  # a dropped client ends its handler, nothing else
            pass
        finally:
            self._clients.discard(connection)

    def _call(self, coroutine: Any, timeout: float = 30) -> Any:
        assert self._loop is not None, "the replay is not started"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def wait_for_clients(self, count: int = 1, subscriptions: int = 0, timeout: float = 30) -> None:
        """Wait until ``count`` clients are connected and ``subscriptions`` messages have been
        received in all (since the start)."""
        deadline = time.monotonic() + timeout
        while len(self._clients) < count or len(self.received) < subscriptions:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(self._clients)} of {count} clients, {len(self.received)} of "
                    f"{subscriptions} messages after {timeout} s"
                )
            time.sleep(0.01)

    def send(self, frames: list[Any]) -> None:
        """Send ``frames`` (objects are JSON-encoded, text as it is) to every connected
        client, in order, and return once they are written."""

        async def _send() -> None:
            for frame in frames:
                text = frame if isinstance(frame, str) else json.dumps(frame)
                for client in list(self._clients):
                    await client.send(text)

        self._call(_send())

    def drop(self) -> None:
        """Close every connection abruptly (no close handshake), as a network fault does."""

        async def _drop() -> None:
            for client in list(self._clients):
                client.transport.abort()
                self._clients.discard(client)

        self._call(_drop())
