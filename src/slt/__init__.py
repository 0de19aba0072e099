"""SelfLearningTrader: a self-learning crypto futures trading system."""

from importlib.metadata import PackageNotFoundError, version

from slt.runtime.numba_cache import configure_numba_cache

# Before any kernel module imports numba: compiled kernels are cached per kernel source.
configure_numba_cache()

try:
    __version__ = version("selflearningtrader")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
