"""Alertmanager label matchers with amtool's syntax: `name=value`, `name!=value`,
`name=~regex`, `name!~regex`; values may be double-quoted; a bare word means
`alertname=word`."""

from __future__ import annotations

import getpass
import json
import re
import socket
from dataclasses import dataclass

_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
_BARE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:.\-]*$")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def op(self) -> str:
        return {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}[
            (self.is_regex, self.is_equal)
        ]

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value)}"

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.is_regex:
            hit = re.fullmatch(self.value, actual) is not None
        else:
            hit = actual == self.value
        return hit if self.is_equal else not hit

    def to_api(self) -> dict[str, object]:
        """The shape of Alertmanager's API v2 silence matcher."""
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }

    @classmethod
    def from_api(cls, data: dict[str, object]) -> Matcher:
        return cls(
            name=str(data["name"]),
            value=str(data["value"]),
            is_regex=bool(data.get("isRegex", False)),
            is_equal=bool(data.get("isEqual", True)),
        )


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"bad quoted value {raw}: {exc.msg}") from None
        if not isinstance(value, str):
            raise ValueError(f"bad quoted value {raw}")
        return value
    if raw.startswith('"') or raw.endswith('"'):
        raise ValueError(f"unbalanced quotes in {raw!r}")
    return raw


def parse_matcher(text: str) -> Matcher:
    """Parse one matcher; raise ValueError naming what is wrong."""
    found = _MATCHER.match(text)
    if not found:
        if _BARE.match(text.strip()):
            return Matcher("alertname", text.strip())
        raise ValueError(
            f"bad matcher {text!r} (expected name=value, name!=value, name=~regex or name!~regex)"
        )
    name, op, raw = found.groups()
    value = _unquote(raw)
    is_regex = op in ("=~", "!~")
    if is_regex:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"bad regex in matcher {text!r}: {exc}") from None
    return Matcher(name, value, is_regex=is_regex, is_equal=op in ("=", "=~"))


def default_author() -> str:
    """Who a silence is from when not given: user@host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "opskit"
    return f"{user}@{socket.gethostname()}"
