import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opskit.matchers import Matcher, parse_matcher


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("alertname=X", Matcher("alertname", "X")),
        ('severity=~"crit.*"', Matcher("severity", "crit.*", is_regex=True)),
        ("job!=node", Matcher("job", "node", is_equal=False)),
        ('instance!~"10\\\\..*"', Matcher("instance", "10\\..*", is_regex=True, is_equal=False)),
        ('summary="a = b, c"', Matcher("summary", "a = b, c")),
        ("EmailServiceDown", Matcher("alertname", "EmailServiceDown")),
        ("env=", Matcher("env", "")),
    ],
)
def test_amtool_syntax(text: str, expected: Matcher) -> None:
    assert parse_matcher(text) == expected


@pytest.mark.parametrize("text", ["=x", "a b=c", 'x="unbalanced', "sev=~(", "9abc=1"])
def test_bad_matchers_say_why(text: str) -> None:
    with pytest.raises(ValueError, match=r"matcher|quote|regex"):
        parse_matcher(text)


def test_matching_semantics() -> None:
    labels = {"alertname": "DiskFull", "severity": "critical"}
    assert parse_matcher('severity=~"crit.*"').matches(labels)
    assert not parse_matcher('severity=~"crit"').matches(labels)  # anchored like Alertmanager
    assert parse_matcher("team!=ops").matches(labels)  # missing label is ""
    assert not parse_matcher("alertname!~Disk.*").matches(labels)


names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,15}", fullmatch=True)
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(names, values, st.booleans())
def test_str_round_trips(name: str, value: str, is_equal: bool) -> None:
    m = Matcher(name, value, is_regex=False, is_equal=is_equal)
    assert parse_matcher(str(m)) == m


@given(st.text(max_size=30))
def test_garbage_gives_value_error_only(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_matcher(text)
