"""Sign-in limits as transcripts: attempts, outcomes and waits on a clock of our own."""

from __future__ import annotations

import contextlib
import ipaddress
import tracemalloc

import pytest

from imagegate.services import TooManyAttempts
from imagegate.services.throttle import (
    ADDRESS,
    FORGET_SECONDS,
    KNOWN,
    USERNAME,
    SignInThrottle,
)


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def throttle(ticker: Ticker) -> SignInThrottle:
    return SignInThrottle(ticker)


def fail(throttle: SignInThrottle, address: str, user: str) -> None:
    with throttle.attempt(address, user) as attempt:
        attempt.failed()


def succeed(throttle: SignInThrottle, address: str, user: str) -> None:
    with throttle.attempt(address, user) as attempt:
        attempt.succeeded()


def refused(throttle: SignInThrottle, address: str, user: str) -> TooManyAttempts:
    with pytest.raises(TooManyAttempts) as caught, throttle.attempt(address, user):
        pytest.fail("the attempt was admitted")
    return caught.value


def test_after_the_free_failures_each_wait_doubles_up_to_the_cap(
    throttle: SignInThrottle, ticker: Ticker
) -> None:
    for n in range(ADDRESS.free):
        fail(throttle, "10.0.0.1", f"user{n}")
    waits = []
    for _ in range(12):
        refusal = refused(throttle, "10.0.0.1", "anyone")
        waits.append(refusal.retry_after)
        ticker.now += refusal.retry_after
        fail(throttle, "10.0.0.1", "anyone")
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert ADDRESS.cap_seconds == 300
    assert refusal.message == (
        "too many failed sign-in attempts from 10.0.0.1; try again in 300 seconds"
    )


def test_a_refused_attempt_is_not_checked_and_does_not_add_to_the_wait(
    throttle: SignInThrottle, ticker: Ticker
) -> None:
    for _ in range(USERNAME.free):
        fail(throttle, "10.0.0.1", "alice")
    for _ in range(10):
        assert refused(throttle, "10.0.0.1", "alice").retry_after == 1
    ticker.now += 0.5
    assert refused(throttle, "10.0.0.1", "alice").retry_after == 1  # rounded up
    ticker.now += 0.5
    succeed(throttle, "10.0.0.1", "alice")


def test_other_addresses_are_not_limited_by_one_address(throttle: SignInThrottle) -> None:
    for n in range(ADDRESS.free + 5):
        with contextlib.suppress(TooManyAttempts):
            fail(throttle, "10.0.0.1", f"user{n}")
    succeed(throttle, "10.0.0.2", "user0")


def test_many_addresses_on_one_name_do_not_lock_the_user_out_where_they_signed_in(
    throttle: SignInThrottle, ticker: Ticker
) -> None:
    succeed(throttle, "192.0.2.7", "alice")  # alice's laptop
    for n in range(USERNAME.free + 3):
        with contextlib.suppress(TooManyAttempts):
            fail(throttle, f"10.0.0.{n}", "alice")  # a botnet, one guess per address
    # A new address waits (at most a minute), even with the right password...
    refusal = refused(throttle, "198.51.100.1", "alice")
    assert refusal.message.startswith("too many failed sign-in attempts for this account")
    assert refusal.retry_after <= USERNAME.cap_seconds == 60
    # ...but alice goes on signing in where she did before.
    for _ in range(3):
        succeed(throttle, "192.0.2.7", "alice")
    ticker.now += refusal.retry_after
    succeed(throttle, "198.51.100.1", "alice")


def test_a_known_address_is_limited_per_user_so_a_neighbour_cannot_lock_you_out(
    throttle: SignInThrottle,
) -> None:
    succeed(throttle, "203.0.113.9", "alice")  # the office NAT, alice signed in there
    succeed(throttle, "203.0.113.9", "bob")
    for _ in range(KNOWN.free):
        fail(throttle, "203.0.113.9", "bob")  # bob keeps mistyping
    refused(throttle, "203.0.113.9", "bob")
    succeed(throttle, "203.0.113.9", "alice")
    for n in range(ADDRESS.free):
        fail(throttle, "203.0.113.9", f"stranger{n}")  # someone guessing at the NAT
    refused(throttle, "203.0.113.9", "carol")  # a first sign-in from there waits
    succeed(throttle, "203.0.113.9", "alice")


def test_attempts_being_checked_count_as_failures_until_they_end(
    throttle: SignInThrottle,
) -> None:
    with contextlib.ExitStack() as stack:
        attempts = [
            stack.enter_context(throttle.attempt("10.0.0.1", "alice")) for _ in range(USERNAME.free)
        ]
        assert refused(throttle, "10.0.0.1", "alice").retry_after == 1
        for attempt in attempts:
            attempt.succeeded()
    succeed(throttle, "10.0.0.1", "alice")


def test_a_check_that_breaks_counts_as_nothing(throttle: SignInThrottle) -> None:
    for _ in range(USERNAME.free + 2):
        with pytest.raises(RuntimeError), throttle.attempt("10.0.0.1", "alice"):
            raise RuntimeError("the database is down")
    succeed(throttle, "10.0.0.1", "alice")


def test_failures_are_forgotten(throttle: SignInThrottle, ticker: Ticker) -> None:
    for _ in range(USERNAME.free):
        fail(throttle, "10.0.0.1", "alice")
    refused(throttle, "10.0.0.1", "alice")
    ticker.now += FORGET_SECONDS + 1
    for _ in range(USERNAME.free - 1):
        fail(throttle, "10.0.0.1", "alice")  # a fresh allowance
    fail(throttle, "10.0.0.1", "alice")
    refused(throttle, "10.0.0.1", "alice")


def test_a_success_clears_only_its_known_address(throttle: SignInThrottle) -> None:
    for n in range(ADDRESS.free - 1):
        fail(throttle, "10.0.0.1", f"stranger{n}")
    succeed(throttle, "10.0.0.1", "alice")
    # The address's count stays: an attacker with an account of their own cannot sign
    # in between guesses to start afresh.
    fail(throttle, "10.0.0.1", "mallory")
    refused(throttle, "10.0.0.1", "mallory")
    # alice's known-address limit starts from nothing, and is hers alone.
    for _ in range(KNOWN.free):
        fail(throttle, "10.0.0.1", "alice")
    refused(throttle, "10.0.0.1", "alice")


def test_an_ipv6_client_counts_by_its_64(throttle: SignInThrottle) -> None:
    for n in range(ADDRESS.free):
        fail(throttle, f"2001:db8:1:2::{n + 1:x}", f"user{n}")
    refused(throttle, "2001:db8:1:2:ffff::1", "anyone")
    succeed(throttle, "2001:db8:1:3::1", "anyone")
    for n in range(ADDRESS.free):
        fail(throttle, "::ffff:10.0.0.5", f"user{n}")  # IPv4, written as IPv6
    refused(throttle, "10.0.0.5", "anyone")


def test_no_address_is_one_address(throttle: SignInThrottle) -> None:
    for n in range(ADDRESS.free):
        fail(throttle, "", f"user{n}")
    assert refused(throttle, None, "x").message.startswith(
        "too many failed sign-in attempts from an unknown address"
    )


def test_memory_is_bounded(ticker: Ticker) -> None:
    throttle = SignInThrottle(ticker, max_entries=100)
    for n in range(1000):
        fail(throttle, f"10.0.{n // 256}.{n % 256}", f"user{n}")
    assert len(throttle.addresses) <= 101 and len(throttle.users) <= 101


def test_what_a_limit_holds_does_not_grow_with_the_name_tried(ticker: Ticker) -> None:
    """Issue 9: 4,000 attempts with 60 KB names from as many /64s held 231 MiB."""
    throttle = SignInThrottle(ticker)
    network = int(ipaddress.IPv6Address("2001:db8::"))
    tracemalloc.start()
    try:
        for n in range(300):
            address = str(ipaddress.IPv6Address(network + (n << 64)))
            fail(throttle, address, f"{n}-" + "a" * 60_000)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(throttle.users) == len(throttle.addresses) == 300
    assert held < 1024 * 1024, f"{held / 2**20:.1f} MiB for 300 entries"  # 17 MiB by name
