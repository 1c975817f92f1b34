"""A Binance USDⓈ-M Futures compatible front (REST ``/fapi``, market and user websockets), so
that bots written for Binance (ccxt, freqtrade) trade here unchanged: docs/binance-api.md.

It is a translation front beside the native gateway, built on the same parts (the command
sender, the read model of the logs, the price board): every request becomes the same engine
command the native gateway would send, and every answer is the engine's result in Binance's
shapes. The core never learns those shapes; they live here only.
"""
