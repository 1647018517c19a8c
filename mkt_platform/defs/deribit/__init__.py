"""Deribit option trades: the instrument-name parser, the trade contract and the REST client.

Source: ``GET /api/v2/public/get_last_trades_by_currency_and_time`` on
``https://www.deribit.com`` (last 24 hours) and ``https://history.deribit.com`` (older days).
"""
