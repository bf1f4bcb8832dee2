from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opskit.durations import MAX_SECONDS, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1h30m", 5400),
        ("30d", 2592000),
        ("2w", 1209600),
        ("250ms", 0.25),
        (" 90S ", 90),
    ],
)
def test_parses_prometheus_style(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "-5m", "1h 30m", "0s", "h5", "5m3"])
def test_rejects_with_a_message(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


units = st.sampled_from(["s", "m", "h", "d", "w"])


@given(st.lists(st.tuples(st.integers(1, 10_000), units), min_size=1, max_size=4))
def test_sum_of_parts(parts: list[tuple[int, str]]) -> None:
    size = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = "".join(f"{n}{u}" for n, u in parts)
    total = sum(n * size[u] for n, u in parts)
    if total > MAX_SECONDS:  # over a century is refused with a message
        with pytest.raises(ValueError, match="100 years"):
            parse_duration(text)
        return
    assert parse_duration(text).total_seconds() == total


@given(st.text(max_size=12))
def test_never_crashes_on_garbage(text: str) -> None:
    try:
        value = parse_duration(text)
    except ValueError:
        return
    assert value.total_seconds() > 0


@given(st.integers(1, 10**8))
def test_format_round_trips_whole_units(seconds: int) -> None:
    text = format_duration(seconds)
    assert parse_duration(text).total_seconds() <= seconds
    assert seconds - parse_duration(text).total_seconds() < 86400
