"""Strategies: pure functions from candles (and features) to a direction and a raw score."""
