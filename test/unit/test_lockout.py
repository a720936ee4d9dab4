"""Failed-login bookkeeping: lockout that expires and resets, bounded memory, the status arithmetic."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kubellm.apis.validation.names import dns1123_subdomain
from kubellm.app.lockout import FailureTracker, SourceThrottle
from kubellm.app.login import count_failure, record_name_prefix, stored_lock


def test_a_name_locks_after_max_failures_and_unlocks_by_time() -> None:
    t = FailureTracker(max_failures=3, lockout=10)
    for i in range(2):
        assert t.failed("ann", 100 + i).count == i + 1
        assert t.locked_for("ann", 100 + i) == 0
    assert t.failed("ann", 102).locked_until == 112
    assert t.locked_for("ann", 105) == 7
    # more failures while locked do not extend the lock
    t.failed("ann", 106)
    assert t.locked_for("ann", 106) == 6
    # after the lock: the count starts again, so one wrong guess does not re-lock
    assert t.locked_for("ann", 112) == 0
    again = t.failed("ann", 113)
    assert again.count == 1 and not again.locked_until


def test_success_resets_and_memory_is_bounded() -> None:
    t = FailureTracker(max_failures=2, lockout=10, max_entries=100)
    t.failed("bob", 1)
    t.succeeded("bob")
    assert t.failed("bob", 2).count == 1
    for i in range(1000):
        t.failed(f"name-{i}", 3)
    assert len(t._entries) == 100


def test_source_throttle_is_bounded() -> None:
    th = SourceThrottle(limit=3, window=60, max_entries=50)
    for i in range(3):
        assert th.retry_after("10.0.0.1", i) == 0
        th.failed("10.0.0.1", i)
    assert 0 < th.retry_after("10.0.0.1", 3) <= 60
    assert th.retry_after("10.0.0.1", 61) == 0
    for i in range(500):
        th.failed(f"10.1.{i // 250}.{i % 250}", 100)
    assert len(th._failures) == 50
    for _ in range(100):
        th.failed("10.0.0.9", 100)
    assert len(th._failures["10.0.0.9"]) == 3


def test_stored_status_arithmetic() -> None:
    st0: dict[str, object] = {}
    st1 = count_failure(st0, 1000, max_failures=2, lockout=60)
    assert st1["failedLoginCount"] == 1 and st1["state"] == "Active"
    st2 = count_failure(st1, 1001, max_failures=2, lockout=60)
    assert st2["state"] == "LockedOut" and st2["lockedUntil"] == "1970-01-01T00:17:41Z"
    assert stored_lock({"status": st2}, 1001) == 60
    assert count_failure(st2, 1002, 2, 60)["lockedUntil"] == st2["lockedUntil"]  # not extended
    after = count_failure(st2, 1100, 2, 60)  # expired: the count starts again
    assert after["failedLoginCount"] == 1 and after["state"] == "Active" and after["lockedUntil"] is None
    assert stored_lock({"status": after}, 1100) == 0 and stored_lock(None, 0) == 0


@given(st.text(max_size=300))
def test_any_username_gives_a_valid_record_name(username: str) -> None:
    prefix = record_name_prefix(username)
    assert dns1123_subdomain(prefix + "abcde") == []
    assert len(prefix) <= 41
