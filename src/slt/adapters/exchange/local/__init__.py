"""A local Binance USDT-M futures exchange: Binance's protocol on 127.0.0.1 over a replayed
market from the project's store (``slt exchange serve``; docs/exchange.md)."""
