"""Every exception type the project raises on purpose; a leaf module importable from any layer."""

from __future__ import annotations


class SltError(Exception):
    """Base of all expected errors: the CLI prints the message on one line and exits with code 2."""


class DataFileError(SltError):
    """A market-data file that cannot be imported as it is (corrupt, bad columns, mixed steps)."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class InvalidSeriesError(SltError):
    """Candle or funding arrays that break the canonical representation (types, order, NaN)."""


class UnknownSeriesError(SltError):
    """A symbol, market, timeframe or kind asked for that the store does not hold."""


class StoreError(SltError):
    """The market-data store could not be read or written (permissions, corrupt store file)."""


class ConfigError(SltError):
    """Invalid configuration: the message lists every bad field with its reason."""


class ExchangeError(SltError):
    """The exchange answered with an error that retrying within our budget did not fix."""


class ExchangeRejected(ExchangeError):
    """An answer in Binance's error form, ``{"code": ..., "msg": ...}`` with its HTTP status:
    what the local exchange sends and what the exchange adapter receives."""

    def __init__(
        self, code: int, msg: str, status: int = 400, retry_after_s: int | None = None
    ) -> None:
        self.code = code
        self.msg = msg
        self.status = status
        self.retry_after_s = retry_after_s
        super().__init__(f"{code}: {msg}")


class IntegrityError(Exception):
    """The engine's view of orders and positions broke a rule it relies on (an illegal order
    transition, a fill for an order it never placed, an overfill): a bug or a diverged
    exchange, never the user's mistake. Not an ``SltError``: it takes the safe-stop path (no
    new entries, protective orders left in place, records flushed), not "bad input, exit 2".
    """

    def __init__(self, message: str, code: int = 0, symbol: str = "", order: str = "") -> None:
        self.code = code
        self.symbol = symbol
        self.order = order
        super().__init__(message)
