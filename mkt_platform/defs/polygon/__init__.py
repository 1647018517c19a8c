"""Polygon (polygon.io): US equity aggregates (SPY), on the NYSE trading calendar.

Source: ``GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`` on
``https://api.polygon.io``, with the API key from ``POLYGON_API_KEY``.
"""
