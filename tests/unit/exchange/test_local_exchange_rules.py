"""The local exchange's signing, account parsing, clocks and rate-limit windows."""

from __future__ import annotations

import pytest

from slt.adapters.exchange.local.auth import (
    ApiAccount,
    Authenticator,
    hmac_signature,
    parse_accounts,
    without_signature,
)
from slt.adapters.exchange.local.clock import ReplayClock
from slt.adapters.exchange.local.limits import RateLimits
from slt.domain.clock import parse_utc_ms
from slt.domain.timeframes import DAY_MS
from slt.errors import ConfigError, ExchangeRejected

# Binance's documented signing example (API docs, "SIGNED Endpoint Examples").
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_QUERY = (
    "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000"
    "&timestamp=1499827319559"
)
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_the_signature_is_binances_documented_one() -> None:
    assert hmac_signature(DOC_SECRET, DOC_QUERY) == DOC_SIGNATURE


def test_query_and_body_are_signed_together_in_that_order() -> None:
    account = ApiAccount("docKey0123", DOC_SECRET)
    auth = Authenticator([account], lambda: 1_499_827_319_600)
    query, body = DOC_QUERY[:40], DOC_QUERY[40:]
    params = {"timestamp": "1499827319559", "recvWindow": "5000"}
    auth.verify(account, query, f"{body}&signature={DOC_SIGNATURE.upper()}", params)
    with pytest.raises(ExchangeRejected, match="-1022"):
        auth.verify(account, body, f"{query}&signature={DOC_SIGNATURE}", params)
    assert without_signature("a=1&signature=xyz&b=2") == ("a=1&b=2", "xyz")


def test_bad_account_entries_are_named_by_position_never_by_their_secret() -> None:
    assert parse_accounts("key00001:secret01,key00002:secret02")[1].key == "key00002"
    with pytest.raises(ConfigError, match="entry 2 is not KEY:SECRET") as bad:
        parse_accounts("key00001:secret01,key00002-hunter2secret")
    assert "hunter2" not in str(bad.value)
    with pytest.raises(ConfigError, match="entry 2 repeats an API key"):
        parse_accounts("key00001:secret01,key00001:secret02")
    assert "secret01" not in repr(parse_accounts("key00001:secret01"))


def test_at_speed_one_history_moves_by_whole_days_and_keeps_the_time_of_day() -> None:
    wall = [parse_utc_ms("2026-12-07") + 50_000_123]
    clock = ReplayClock.start(parse_utc_ms("2024-03-01"), 1, lambda: wall[0])
    assert clock.history_now() == parse_utc_ms("2024-03-01") + 50_000_123
    assert clock.to_wire(clock.history_now()) == wall[0] and clock.shift_ms % DAY_MS == 0
    wall[0] += 90_000
    assert clock.history_now() == parse_utc_ms("2024-03-01") + 50_090_123


def test_at_speed_sixty_an_hour_of_history_passes_in_a_wall_minute_with_its_own_times() -> None:
    wall = [1_000_000]
    clock = ReplayClock.start(parse_utc_ms("2024-03-01"), 60, lambda: wall[0])
    wall[0] += 60_000
    assert clock.history_now() == parse_utc_ms("2024-03-01") + 3_600_000
    assert clock.shift_ms == 0
    with pytest.raises(ConfigError, match="--speed must be 1 or more"):
        ReplayClock.start(0, 0.5, lambda: 0)


def test_weight_counts_per_fixed_minute_and_orders_per_ten_seconds() -> None:
    limits = RateLimits(weight_limit=5, orders_10s=2, orders_1m=3)
    assert limits.charge("ip", 5, 59_999) == 5
    assert limits.charge("ip", 5, 60_000) == 5  # a new minute at :00
    assert limits.charge_order("acct", 0) == (1, 1)
    assert limits.charge_order("acct", 9_999) == (2, 2)
    with pytest.raises(ExchangeRejected, match="-1015") as over:
        limits.charge_order("acct", 9_999)
    assert over.value.status == 429 and over.value.retry_after_s == 1
    assert limits.charge_order("other", 9_999) == (1, 1)  # per account
    with pytest.raises(ExchangeRejected, match="per 1m"):
        limits.charge_order("acct", 10_000)
