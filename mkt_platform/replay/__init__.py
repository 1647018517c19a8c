"""Offline replay of exchange REST APIs from recorded real responses.

``ReplayServer`` serves each exchange under its own path prefix (``/binance`` emulates
``https://api.binance.com``), for tests and demos that must not touch the network.
"""

from mkt_platform.replay.server import ExchangeHandler, RecordedRequest, ReplayServer, Response

__all__ = ["ExchangeHandler", "RecordedRequest", "ReplayServer", "Response"]
