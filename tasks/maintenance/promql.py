"""Just enough PromQL reading for the threshold review: split `EXPR > 2` into its
left-hand side, operator and number. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPS = (">=", "<=", "==", "!=", ">", "<")
_NUMBER = re.compile(r"(?:bool\s+)?([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)")
_SET_OPS = re.compile(r"\b(and|or|unless)\b")


@dataclass(frozen=True)
class Threshold:
    lhs: str
    op: str
    value: float


def _top_level_ops(expr: str) -> list[tuple[int, str]]:
    """(position, operator) of comparisons outside brackets and strings."""
    found: list[tuple[int, str]] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            op = next((o for o in _OPS if expr.startswith(o, i)), None)
            if op is not None:  # `=~` and `!~` live in selectors, never at depth 0
                found.append((i, op))
                i += len(op)
                continue
        i += 1
    return found


def split_threshold(expr: str) -> Threshold | None:
    """`lhs OP number` (OP one of > >= < <=) at the top level, else None: a set
    operation, two comparisons, an equality test or a comparison between two series."""
    text = " ".join(expr.split())
    ops = _top_level_ops(text)
    if len(ops) != 1:
        return None
    pos, op = ops[0]
    lhs, rhs = text[:pos].strip(), text[pos + len(op) :].strip()
    m = _NUMBER.fullmatch(rhs)
    if op in ("==", "!=") or not m or not lhs or _SET_OPS.search(_strip_brackets(lhs)):
        return None
    return Threshold(lhs, op, float(m[1]))


def _strip_brackets(expr: str) -> str:
    """The expression with bracketed parts removed (to look for top-level keywords)."""
    out, depth = [], 0
    for ch in expr:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)
