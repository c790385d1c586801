import datetime as dt

from tasdid.core.codes import after_failure, code_digest, code_matches, generate_numeric, is_locked

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def test_generated_codes_are_digits_of_the_asked_length():
    codes = {generate_numeric(6) for _ in range(50)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 40  # random, not a constant


def test_digest_is_bound_to_its_scope_and_never_the_code():
    digest = code_digest("fidelio:1", "123456")
    assert "123456" not in digest
    assert code_matches("fidelio:1", "123456", digest)
    assert code_matches("fidelio:1", " 123456 ", digest)
    assert not code_matches("fidelio:2", "123456", digest)
    assert not code_matches("fidelio:1", "123457", digest)
    assert not code_matches("fidelio:1", "123456", "")


def test_lockout_after_the_limit_then_counting_starts_again():
    failures, locked_until = 0, None
    for _ in range(4):
        state = after_failure(failures=failures, now=NOW, limit=5, lock_for=dt.timedelta(minutes=30))
        failures, locked_until = state.failures, state.locked_until
        assert locked_until is None
    state = after_failure(failures=failures, now=NOW, limit=5, lock_for=dt.timedelta(minutes=30))
    assert state.failures == 0 and state.locked_until == NOW + dt.timedelta(minutes=30)
    assert is_locked(state.locked_until, NOW + dt.timedelta(minutes=29))
    assert not is_locked(state.locked_until, NOW + dt.timedelta(minutes=30))
    assert not is_locked(None, NOW)
