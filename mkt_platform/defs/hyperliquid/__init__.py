"""Hyperliquid perpetuals market data: candles, funding history and asset contexts."""
