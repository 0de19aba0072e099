"""SelfLearningTrader: a self-learning crypto futures trading system.

Importing the package does nothing but name its version: entry points (the ``slt`` command,
the tests, the benchmarks) set up numba's cache themselves (``runtime.numba_cache``).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("selflearningtrader")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
