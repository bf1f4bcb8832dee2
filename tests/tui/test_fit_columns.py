"""Tables fit the terminal: the widest columns give way, free text first (one line per
row, cut with an ellipsis, every column in view)."""

from __future__ import annotations

import pytest

from opskit.screens.widgets import MIN_TEXT, fit_columns

TARGETS = ("job", "instance", "health", "last scrape", "duration ms", "last error")
NATURAL = (13, 28, 6, 11, 11, 40)


def test_a_table_that_fits_is_left_alone() -> None:
    assert fit_columns(NATURAL, 200, TARGETS) == NATURAL


@pytest.mark.parametrize("room", [78, 98, 120])
def test_a_wide_table_fits_its_room(room: int) -> None:
    widths = fit_columns(NATURAL, room, TARGETS)
    assert sum(widths) + 2 * len(widths) <= room
    assert widths[-1] >= MIN_TEXT  # the error column keeps room for its class
    assert all(w <= n for w, n in zip(widths, NATURAL, strict=True))


def test_free_text_gives_way_before_identifiers() -> None:
    widths = fit_columns(NATURAL, 98, TARGETS)
    assert widths[-1] == MIN_TEXT  # "last error" went first
    assert widths[0] == NATURAL[0]  # job untouched


def test_short_columns_are_not_cut_while_long_ones_can_give() -> None:
    widths = fit_columns(NATURAL, 78, TARGETS)
    assert widths[2] == 6 and widths[3] == 11 and widths[4] == 11
