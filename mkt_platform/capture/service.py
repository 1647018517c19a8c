"""The capture service: WebSocket streams read into minute buffers, flushed to the lake.

One task per stream holds a connection (``websockets``' client: its reconnecting iterator
reconnects with exponential backoff and jitter after a drop, and answers pings), sends the
stream's subscriptions again after every connect, and puts each message on one bounded
queue with its receive time. A full queue (a flood the writer cannot keep up with) drops
the message and counts it: memory stays bounded, never a growing backlog. One consumer
decodes each message, checks it against its contract (:mod:`mkt_platform.capture.frames`;
a frame that breaks it is quarantined and counted, never buffered) and hands its rows to the
dataset's :class:`~mkt_platform.capture.sink.HourlySink`. No per-message logging: a
heartbeat line per stream every ``heartbeat_seconds`` (messages, last message time,
connection state, drops, reconnects), also written to a status file
(``$MKT_DATA_DIR/capture/status.json``, atomically) that ``capture_silence_sensor`` reads
to alert when a stream, or the capture itself, has been silent for 15 minutes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from websockets.asyncio.client import connect

from mkt_platform.capture.frames import DATASETS, Dataset, FrameViolation, parse
from mkt_platform.capture.sink import HourlySink
from mkt_platform.lib import lake, quarantine

logger = logging.getLogger("mkt_platform.capture")
#: The wait before a stream whose connection failed for good is tried again.
RETRY_AFTER_FATAL_SECONDS = 30.0


@dataclass(frozen=True)
class Stream:
    """One WebSocket connection: its name (the contract its frames follow: ``hyperliquid``
    or ``binance_liquidations``), its URL, and the messages sent after each connect."""

    name: str
    url: str
    subscriptions: tuple[dict, ...] = ()


@dataclass
class StreamState:
    """What the heartbeat reports of one stream."""

    connected: bool = False
    messages: int = 0
    last_message_ms: int | None = None
    connects: int = 0
    dropped: int = 0
    quarantined: int = 0


def hyperliquid_stream(url: str, coins: tuple[str, ...]) -> Stream:
    """Hyperliquid's 1m candles and asset contexts of ``coins`` on one connection
    (``wss://api.hyperliquid.xyz/ws``)."""
    subscriptions = []
    for coin in coins:
        subscriptions.append(
            {
                "method": "subscribe",
                "subscription": {"type": "candle", "coin": coin, "interval": "1m"},
            }
        )
        subscriptions.append(
            {"method": "subscribe", "subscription": {"type": "activeAssetCtx", "coin": coin}}
        )
    return Stream("hyperliquid", url, tuple(subscriptions))


def binance_liquidations_stream(url: str) -> Stream:
    """Binance USD-M futures liquidations of every symbol
    (``wss://fstream.binance.com/ws/!forceOrder@arr``: the stream is in the URL)."""
    return Stream("binance_liquidations", url)


def status_path() -> Path:
    """The capture's status file, ``$MKT_DATA_DIR/capture/status.json``."""
    from mkt_platform import settings

    return settings.data_dir() / "capture" / "status.json"


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Capture:
    """Run ``streams`` into the lake under ``root`` until :meth:`stop`.

    Attributes:
        queue_size: messages held between the connections and the writer at most.
        clock: the receive time (UTC ms); asset contexts carry none of their own.
        heartbeat_seconds: how often each stream's state is logged.
        reconnect_delays: the delays between reconnections (websockets' exponential backoff
            with jitter by default).
        status_path: where the status is written at each heartbeat (none when ``None``).
        states: each stream's figures, by stream name (what the heartbeat reports).
        sinks: each dataset's minute buffers, by dataset name.
    """

    streams: list[Stream]
    root: lake.LakePath
    queue_size: int = 10_000
    clock: Callable[[], int] = _now_ms
    heartbeat_seconds: float = 300.0
    reconnect_delays: Callable | None = None
    status_path: Path | None = None
    states: dict[str, StreamState] = field(init=False)
    sinks: dict[str, HourlySink] = field(init=False)

    def __post_init__(self) -> None:
        self.states = {s.name: StreamState() for s in self.streams}
        self.sinks = {d.name: HourlySink(d, self.root) for d in DATASETS}
        self._stopping: asyncio.Event | None = None
        self._started_ms: int | None = None

    def sink(self, dataset: Dataset) -> HourlySink:
        return self.sinks[dataset.name]

    async def run(self) -> None:
        """Capture until :meth:`stop`; then flush every buffered minute."""
        self._stopping = asyncio.Event()
        self._started_ms = self.clock()
        self._log_heartbeat()
        queue: asyncio.Queue = asyncio.Queue(maxsize=self.queue_size)
        tasks = [asyncio.create_task(self._read(s, queue)) for s in self.streams]
        tasks.append(asyncio.create_task(self._heartbeat()))
        writer = asyncio.create_task(self._write(queue))
        await self._stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await queue.join()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        for sink in self.sinks.values():
            sink.flush()
        self._log_heartbeat()

    def stop(self) -> None:
        """Ask :meth:`run` to end (from the loop's thread)."""
        if self._stopping is not None:
            self._stopping.set()

    async def _read(self, stream: Stream, queue: asyncio.Queue) -> None:
        """Hold ``stream``'s connection for as long as the capture runs. websockets' iterator
        retries what it deems transient (a refused connection, a 5xx); anything else (a
        handshake refused for good, a bad URL) is logged and tried again after
        ``RETRY_AFTER_FATAL_SECONDS``, so one stream's fault never ends the others."""
        while True:
            try:
                await self._connections(stream, queue)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # logged, then tried again: never fatal
                logger.error(
                    f"capture {stream.name}: {type(exc).__name__}: {exc}; connecting again "
                    f"in {RETRY_AFTER_FATAL_SECONDS:.0f} s"
                )
                await asyncio.sleep(RETRY_AFTER_FATAL_SECONDS)

    async def _connections(self, stream: Stream, queue: asyncio.Queue) -> None:
        state = self.states[stream.name]
        options = {"reconnect_delays": self.reconnect_delays} if self.reconnect_delays else {}
        async for ws in connect(stream.url, open_timeout=10, ping_interval=20, **options):
            state.connected, state.connects = True, state.connects + 1
            try:
                for message in stream.subscriptions:
                    await ws.send(json.dumps(message))
                async for message in ws:
                    received = self.clock()
                    state.messages += 1
                    state.last_message_ms = received
                    try:
                        queue.put_nowait((stream.name, message, received))
                    except asyncio.QueueFull:
                        state.dropped += 1
            except websockets.ConnectionClosed:
                pass
            finally:
                state.connected = False
                # on stop (this task cancelled): a clean close, so the server is not left
                # waiting for the closing handshake
                await ws.close()

    async def _write(self, queue: asyncio.Queue) -> None:
        while True:
            name, message, received = await queue.get()
            try:
                self._handle(name, message, received)
            finally:
                queue.task_done()

    def _handle(self, name: str, message: str | bytes, received: int) -> None:
        body = message.encode() if isinstance(message, str) else message
        try:
            try:
                frame = json.loads(body)
            except ValueError as exc:
                raise FrameViolation(
                    name, "(frame)", "a JSON text", f"undecodable: {exc}"
                ) from None
            rows = parse(name, frame, received)
        except FrameViolation as exc:
            self.states[name].quarantined += 1
            quarantine.save(exc, body)
            return
        for dataset, row in rows:
            self.sinks[dataset.name].add(row)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            self._log_heartbeat()

    def status(self) -> dict:
        """What the heartbeat reports: ``written_at_ms``, ``started_at_ms`` and, per stream,
        ``connected``, ``messages``, ``last_message_ms``, ``connects``, ``dropped`` and
        ``quarantined``."""
        return {
            "written_at_ms": self.clock(),
            "started_at_ms": self._started_ms,
            "streams": {name: vars(state).copy() for name, state in self.states.items()},
        }

    def _log_heartbeat(self) -> None:
        if self.status_path is not None:
            lake.write_bytes_atomic(json.dumps(self.status()).encode(), self.status_path)
        for name, s in self.states.items():
            logger.info(
                f"capture heartbeat {name}: {'connected' if s.connected else 'disconnected'}, "
                f"{s.messages} messages, last at {s.last_message_ms}, {s.connects} connects, "
                f"{s.dropped} dropped, {s.quarantined} quarantined"
            )


def serve() -> int:
    """``mkt-platform capture``: the configured streams into the lake until SIGTERM or
    Ctrl-C, then every buffered minute flushed. Hyperliquid's candles and asset contexts for
    the universe's Hyperliquid perps, and Binance's liquidations; the URLs are
    ``MKT_CAPTURE_HYPERLIQUID_URL`` and ``MKT_CAPTURE_BINANCE_LIQUIDATIONS_URL``.

    Returns:
        0 once stopped.
    """
    import signal

    from mkt_platform import settings
    from mkt_platform.lib.instruments import symbols_for

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    coins = symbols_for("hyperliquid", "perp")
    streams = [binance_liquidations_stream(settings.capture_binance_liquidations_url())]
    if coins:
        streams.insert(0, hyperliquid_stream(settings.capture_hyperliquid_url(), coins))
    root = lake.lake_root()
    capture = Capture(streams, root, status_path=status_path())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, capture.stop)
        logger.info(
            f"capture: {', '.join(s.name for s in streams)} into {root} "
            f"(Hyperliquid coins: {', '.join(coins) or 'none'})"
        )
        await capture.run()

    asyncio.run(main())
    logger.info("capture: stopped, every buffered minute flushed")
    return 0
