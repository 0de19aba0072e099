"""SelfLearningTrader: a self-learning crypto futures trading system."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("selflearningtrader")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
