"""listenKeys as Binance keeps them (reference §7.1): one live key per account, 60 minutes of
wall time after its creation or last extension."""

from __future__ import annotations

import pytest

from slt.adapters.exchange.local.listen_keys import KEY_LENGTH, ListenKeys
from slt.errors import ExchangeRejected

TTL_MS = 3_600_000


@pytest.fixture()
def clock() -> list[int]:
    return [1_000_000]


@pytest.fixture()
def keys(clock: list[int]) -> ListenKeys:
    return ListenKeys(TTL_MS, lambda: clock[0])


def test_post_gives_a_64_character_key_and_the_same_one_while_it_lives(
    keys: ListenKeys, clock: list[int]
) -> None:
    key = keys.open("alice")
    assert len(key) == KEY_LENGTH == 64 and key.isalnum()
    clock[0] += TTL_MS - 1
    assert keys.open("alice") == key  # and extended it by another hour
    clock[0] += TTL_MS - 1
    assert keys.live_key("alice") == key
    assert keys.open("bob") != key


def test_put_extends_the_live_key_and_refuses_any_other(keys: ListenKeys, clock: list[int]) -> None:
    key = keys.open("alice")
    clock[0] += TTL_MS - 1
    assert keys.keep_alive("alice", None) == key == keys.keep_alive("alice", key)
    clock[0] += TTL_MS - 1
    assert keys.live_key("alice") == key
    for api_key, given in (("alice", "someOtherKey"), ("bob", None), ("bob", key)):
        with pytest.raises(ExchangeRejected) as refused:
            keys.keep_alive(api_key, given)
        assert (refused.value.code, refused.value.msg) == (-1125, "This listenKey does not exist.")


def test_a_key_expires_an_hour_after_its_last_extension_and_is_handed_over_once(
    keys: ListenKeys, clock: list[int]
) -> None:
    key = keys.open("alice")
    clock[0] += TTL_MS - 1
    assert keys.ended() == []
    clock[0] += 1
    assert keys.live_key("alice") is None
    assert keys.ended() == [key] and keys.ended() == []
    with pytest.raises(ExchangeRejected, match="listenKey does not exist"):
        keys.keep_alive("alice", None)
    assert keys.open("alice") != key  # a new key after expiry


def test_delete_ends_the_key_at_once(keys: ListenKeys) -> None:
    key = keys.open("alice")
    assert keys.close("alice", key) == key
    assert keys.ended() == [key] and keys.live_key("alice") is None
    with pytest.raises(ExchangeRejected, match="-1125"):
        keys.close("alice", None)
