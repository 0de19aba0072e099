"""A loaded strategy file streams: through its own ``stream``, or by replaying its ``signals``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slt.adapters.strategy_file import check_strategy, load_strategy_file
from slt.domain.strategies.base import StrategyError, StrategyStream
from slt.errors import InvalidSeriesError
from tests.unit.strategies.feature_rows import FIVE_MINUTES_MS, candles_of, feature_matrix

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "my_strategy.py"

# Long when the close rose, short when it fell; the score grows with the move.
MOMENTUM = """
import numpy as np
from slt.domain.strategies.base import Signals

class Momentum:
    name = "momentum"
    uses_features = False

    def signals(self, candles, features):
        change = np.diff(candles.close, prepend=np.nan)
        direction = np.nan_to_num(np.sign(change)).astype(np.int8)
        return Signals(direction, np.clip(np.abs(np.nan_to_num(change)) / 10.0, 0.0, 1.0))

strategy = Momentum()
"""

# Its own stream: long at 0.7 on every candle, counting the candles it saw.
OWN_STREAM = """
import numpy as np
from slt.domain.strategies.base import Signals

class Counter:
    def __init__(self):
        self.seen = 0

    def update(self, open_time_ms, open, high, low, close, volume, features_row, reason):
        self.seen += 1
        return OUTPUT

class Steady:
    name = "steady"
    uses_features = False

    def signals(self, candles, features):
        return Signals(np.ones(len(candles), np.int8), np.full(len(candles), 0.7))

    def stream(self, schema):
        self.last = Counter()
        return self.last

strategy = Steady()
"""


def write(tmp_path: Path, text: str, name: str = "mine.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def feed(stream: StrategyStream, closes: list[float]) -> list[tuple[int, float]]:
    return [
        stream.update(i * FIVE_MINUTES_MS, c, c, c, c, 1.0, None, 0) for i, c in enumerate(closes)
    ]


def test_a_file_without_a_stream_streams_its_batch_signals_candle_by_candle(
    tmp_path: Path,
) -> None:
    closes = [10.0, 12.0, 12.0, 7.0, 8.0, 30.0, 29.5]
    strategy = load_strategy_file(write(tmp_path, MOMENTUM))
    batch = check_strategy(strategy, candles_of(closes), None)
    streamed = feed(strategy.stream(None), closes)
    assert streamed == list(zip(batch.direction.tolist(), batch.score.tolist(), strict=True))
    assert [d for d, _ in streamed] == [0, 1, 0, -1, 1, 1, -1]


def test_the_loaded_strategy_is_the_file_s_own_object_with_a_stream(tmp_path: Path) -> None:
    strategy = load_strategy_file(write(tmp_path, MOMENTUM))
    assert type(strategy).__name__ == "Momentum"
    assert callable(strategy.stream)


def test_the_documented_example_streams_exactly_like_its_batch_signals() -> None:
    rows = [
        {"rsi": 25.0, "h1_trend": 1.0},
        {"rsi": 35.0, "h1_trend": 1.0},
        {"rsi": 75.0, "h1_trend": -1.0},
        {"rsi": 65.0, "h1_trend": -1.0},
        {"rsi": 20.0, "h1_trend": 1.0},
        {"rsi": 45.0, "h1_trend": 1.0},
    ]
    matrix = feature_matrix(*rows, invalid=(4,))
    strategy = load_strategy_file(EXAMPLE)
    batch = check_strategy(strategy, candles_of(np.ones(len(rows))), matrix)
    stream = strategy.stream(matrix.schema)
    streamed = [
        stream.update(i * FIVE_MINUTES_MS, 1.0, 1.0, 1.0, 1.0, 1.0, matrix.values[i], reason)
        for i, reason in enumerate(matrix.reason.tolist())
    ]
    assert streamed == list(zip(batch.direction.tolist(), batch.score.tolist(), strict=True))
    assert [d for d, _ in streamed] == [0, 1, 0, -1, 0, 0]


def test_a_file_with_its_own_stream_is_streamed_through_it(tmp_path: Path) -> None:
    strategy = load_strategy_file(write(tmp_path, OWN_STREAM.replace("OUTPUT", "(1, 0.7)")))
    assert feed(strategy.stream(None), [1.0, 2.0]) == [(1, 0.7), (1, 0.7)]
    assert strategy.last.seen == 2  # type: ignore[attr-defined]


def test_an_own_stream_breaking_the_contract_is_refused_naming_the_file(tmp_path: Path) -> None:
    strategy = load_strategy_file(write(tmp_path, OWN_STREAM.replace("OUTPUT", "(2, 0.7)")))
    with pytest.raises(StrategyError, match=r"mine\.py: strategy steady: stream direction must"):
        feed(strategy.stream(None), [1.0])


def test_an_own_stream_raising_becomes_a_strategy_error_naming_the_file(tmp_path: Path) -> None:
    text = OWN_STREAM.replace("return OUTPUT", "raise KeyError('rsi')")
    strategy = load_strategy_file(write(tmp_path, text))
    with pytest.raises(
        StrategyError, match=r"mine\.py: strategy steady raised KeyError: 'rsi' \(while streaming"
    ):
        feed(strategy.stream(None), [1.0])


def test_signals_raising_while_streaming_becomes_a_strategy_error_naming_the_file(
    tmp_path: Path,
) -> None:
    text = MOMENTUM.replace(
        "        change = ", "        if len(candles) > 2:\n            1 / 0\n        change = "
    )
    stream = load_strategy_file(write(tmp_path, text)).stream(None)
    with pytest.raises(StrategyError) as info:
        feed(stream, [1.0, 2.0, 3.0])
    message = str(info.value)
    assert "mine.py" in message
    assert "strategy momentum raised ZeroDivisionError" in message
    assert f"streaming the candle at {2 * FIVE_MINUTES_MS}" in message


def test_a_replayed_stream_refuses_a_candle_out_of_time_order(tmp_path: Path) -> None:
    stream = load_strategy_file(write(tmp_path, MOMENTUM)).stream(None)
    stream.update(FIVE_MINUTES_MS, 1.0, 1.0, 1.0, 1.0, 1.0, None, 0)
    with pytest.raises(InvalidSeriesError, match="in time order"):
        stream.update(0, 1.0, 1.0, 1.0, 1.0, 1.0, None, 0)


def test_a_history_limit_replays_only_the_last_candles_in_order(tmp_path: Path) -> None:
    # Score: how far the close rose since the first candle the strategy was shown.
    text = MOMENTUM.replace(
        "return Signals(direction, np.clip(np.abs(np.nan_to_num(change)) / 10.0, 0.0, 1.0))",
        "return Signals(np.ones(len(candles), np.int8), (candles.close - candles.close[0]) / 1e4)",
    )
    strategy = load_strategy_file(write(tmp_path, text), stream_history_limit=5)
    streamed = feed(strategy.stream(None), [float(i) for i in range(3_000)])
    assert [s for _, s in streamed[:6]] == [0.0, 1e-4, 2e-4, 3e-4, 4e-4, 4e-4]
    assert {s for _, s in streamed[4:]} == {4e-4}


def test_a_history_limit_below_one_candle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="at least 1 candle"):
        load_strategy_file(write(tmp_path, MOMENTUM), stream_history_limit=0)


def test_a_strategy_with_slots_streams_through_a_wrapper_with_its_name(tmp_path: Path) -> None:
    text = MOMENTUM.replace("class Momentum:", "class Momentum:\n    __slots__ = ()")
    strategy = load_strategy_file(write(tmp_path, text))
    assert strategy.name == "momentum"
    assert strategy.uses_features is False
    assert [d for d, _ in feed(strategy.stream(None), [1.0, 2.0, 1.0])] == [0, 1, -1]
    assert check_strategy(strategy, candles_of([1.0, 2.0]), None).direction.tolist() == [0, 1]


def test_a_file_strategy_using_features_needs_their_schema_to_stream() -> None:
    with pytest.raises(StrategyError, match=r"my_strategy\.py: strategy rsi_reversal uses feat"):
        load_strategy_file(EXAMPLE).stream(None)


def test_a_stream_attribute_that_is_not_a_method_is_refused(tmp_path: Path) -> None:
    text = MOMENTUM.replace(
        "    uses_features = False\n", "    uses_features = False\n    stream = 3\n"
    )
    with pytest.raises(StrategyError, match="`stream` that is not a method"):
        load_strategy_file(write(tmp_path, text))
