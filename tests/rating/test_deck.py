"""Carrier decks as carriers write them, billed as the carrier bills (rating/deck.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coobill.rating import Tariff, cost
from coobill.rating.deck import carrier_tariff, diff_decks, parse_carrier_deck


def carriers_rule(
    per_minute: Decimal, fee: Decimal, first: int, then: int, seconds: int
) -> Decimal:
    """The carrier's own arithmetic: the fee, the first increment whole, each started next one."""
    if seconds <= 0:
        return Decimal(0)
    billed = max(seconds, first)
    if billed > first:
        billed = first + -(-(billed - first) // then) * then
    return fee + per_minute * billed / 60


class TestTheLayouts:
    @pytest.mark.parametrize(
        ("row", "tariff"),
        [
            # per minute (60/60), the layout's default
            ("44,UK,0.0600", Tariff(Decimal("0.0600"), 60, Decimal("0.0600"), 60)),
            ("44,UK,0.0600,,60,60", Tariff(Decimal("0.0600"), 60, Decimal("0.0600"), 60)),
            # 30/6 with a connection fee
            ("44,UK,0.0600,0.0100,30,6", Tariff(Decimal("0.0400"), 30, Decimal("0.0060"), 6)),
            # per second
            ("1,US,0.0120,,1,1", Tariff(Decimal("0.0002"), 1, Decimal("0.0002"), 1)),
            # one increment given: the next ones are the same
            ("49,DE,0.0300,,30", Tariff(Decimal("0.0150"), 30, Decimal("0.0150"), 30)),
            # no minimum, then per minute
            ("33,FR,0.0300,0.0200,0", Tariff(Decimal("0.0200"), 0, Decimal("0.0300"), 60)),
        ],
    )
    def test_each_layout_maps_onto_the_tariff(self, row: str, tariff: Tariff) -> None:
        [rate] = parse_carrier_deck("prefix,description,rate_per_minute\n" + row + "\n")
        assert rate.tariff == tariff
        assert not rate.rounded

    def test_the_worked_example(self) -> None:
        # 0.0600/min at 30/6: 45 s = the first 30 s (0.03) + three started 6 s (0.018)
        tariff, _ = carrier_tariff(Decimal("0.06"), Decimal(0), 30, 6)
        assert cost(tariff, 45) == Decimal("0.048")

    def test_a_price_that_does_not_fit_four_places_is_rounded_and_said(self) -> None:
        [rate] = parse_carrier_deck(
            "prefix,description,rate_per_minute,connect_fee,"
            "initial_increment,increment\n86,CN,0.0123,,6,6\n"
        )
        assert rate.rounded
        assert rate.tariff.rate == Decimal("0.0012")

    def test_a_bom_blank_lines_and_quoted_descriptions_are_read(self) -> None:
        deck = parse_carrier_deck(
            '\ufeffprefix,description,rate_per_minute\n\n"44","United Kingdom, mobile",0.1\n'
        )
        assert [(r.line, r.prefix, r.description) for r in deck] == [
            (3, "44", "United Kingdom, mobile")
        ]

    @pytest.mark.parametrize(
        ("text", "error"),
        [
            ("prefix,rate\n44,0.1\n", "line 1: the header must start"),
            ("prefix,description,rate_per_minute\n44,UK\n", "line 2: 3 to 6 columns"),
            ("prefix,description,rate_per_minute\n4x,UK,0.1\n", "line 2: prefix: '4x'"),
            ("prefix,description,rate_per_minute\n44,UK,abc\n", "line 2: rate_per_minute: 'abc'"),
            ("prefix,description,rate_per_minute\n44,UK,NaN\n", "line 2: rate_per_minute"),
            (
                "prefix,description,rate_per_minute\n44,UK,-1\n",
                "line 2: prices must not be negative",
            ),
            (
                "prefix,description,rate_per_minute,connect_fee,initial_increment,increment\n"
                "44,UK,0.1,,30,0\n",
                "line 2: increments",
            ),
            (
                "prefix,description,rate_per_minute\n44,UK,0.1\n44,UK,0.2\n",
                "line 3: prefix 44 is already on line 2",
            ),
            ("prefix,description,rate_per_minute\n٤٤,UK,0.1\n", "line 2: prefix"),
        ],
    )
    def test_a_bad_row_is_named(self, text: str, error: str) -> None:
        with pytest.raises(ValueError, match="^" + error.replace("(", r"\(")):
            parse_carrier_deck(text)


@given(
    per_minute=st.decimals("0", "2", places=2),
    fee=st.decimals("0", "1", places=2),
    first=st.sampled_from([0, 1, 6, 30, 60]),
    then=st.sampled_from([1, 6, 30, 60]),
    seconds=st.integers(0, 4000),
)
def test_a_call_costs_what_the_carriers_rule_gives(
    per_minute: Decimal, fee: Decimal, first: int, then: int, seconds: int
) -> None:
    """Where the per-increment prices fit four places, the tariff bills exactly as the
    carrier does."""
    tariff, rounded = carrier_tariff(per_minute, fee, first, then)
    if not rounded:
        assert cost(tariff, seconds) == carriers_rule(per_minute, fee, first, then, seconds)


def test_a_diff_names_what_is_added_removed_and_changed() -> None:
    old = {"44": Decimal("0.06"), "49": Decimal("0.03"), "33": Decimal("0.02")}
    new = {"44": Decimal("0.05"), "49": Decimal("0.03"), "1": Decimal("0.01")}
    diff = diff_decks(old, new)
    assert diff.added == (("1", Decimal("0.01")),)
    assert diff.removed == (("33", Decimal("0.02")),)
    assert [(c.key, c.old, c.new) for c in diff.changed] == [
        ("44", Decimal("0.06"), Decimal("0.05"))
    ]
    assert diff.unchanged == 1
    assert not diff.empty
    assert diff_decks(old, dict(old)).empty
