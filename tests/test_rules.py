"""The shop's rules: card expiry, money, and order totals."""

from datetime import date

import pytest

from shared import LineItem, Order
from shop.rules import CardExpiry, format_cents, parse_card_expiry, parse_cents


@pytest.mark.parametrize(
    ("text", "expiry"),
    [
        ("12/30", CardExpiry(year=2030, month=12)),
        ("01/27", CardExpiry(year=2027, month=1)),
        (" 06/99 ", CardExpiry(year=2099, month=6)),
    ],
)
def test_parse_card_expiry_accepts_mm_yy(text: str, expiry: CardExpiry) -> None:
    assert parse_card_expiry(text) == expiry
    assert str(parse_card_expiry(text)) == text.strip()


@pytest.mark.parametrize("text", ["13/30", "00/30"])
def test_parse_card_expiry_rejects_a_month_outside_1_to_12(text: str) -> None:
    with pytest.raises(ValueError, match="month must be 01 to 12"):
        parse_card_expiry(text)


@pytest.mark.parametrize("text", ["abc", "1230", "12/3", "12-30", "1/30", "12/2030", ""])
def test_parse_card_expiry_rejects_anything_but_mm_yy(text: str) -> None:
    with pytest.raises(ValueError, match="must be MM/YY"):
        parse_card_expiry(text)


@pytest.mark.parametrize(
    ("expiry", "today", "expired"),
    [
        (CardExpiry(year=2030, month=12), date(2030, 12, 1), False),
        (CardExpiry(year=2030, month=12), date(2030, 12, 31), False),
        (CardExpiry(year=2030, month=12), date(2031, 1, 1), True),
        (CardExpiry(2030, 2), date(2030, 2, 28), False),
        (CardExpiry(2030, 2), date(2030, 3, 1), True),
        (CardExpiry(2030, 2), date(2030, 1, 31), False),
        (CardExpiry(2031, 1), date(2030, 12, 31), False),
        (CardExpiry(2029, 12), date(2030, 1, 1), True),
    ],
)
def test_card_works_through_the_last_day_of_its_expiry_month(
    expiry: CardExpiry, today: date, expired: bool
) -> None:
    assert expiry.is_expired(today) is expired


@pytest.mark.parametrize(
    ("text", "cents"),
    [
        ("100", 10_000),
        ("99.95", 9_995),
        ("$1250.00", 125_000),
        ("$1,250.00", 125_000),
        ("0.05", 5),
        ("0", 0),
        (" 7 ", 700),
        ("999999999.99", 99_999_999_999),
    ],
)
def test_parse_cents_reads_dollars_with_optional_cents(text: str, cents: int) -> None:
    assert parse_cents(text) == cents


@pytest.mark.parametrize(
    "text", ["", "$", "abc", "1.5", "1.234", ".50", "12.", "-5", "1250$", "١٢", "1234567890"]
)
def test_parse_cents_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="amount must be dollars"):
        parse_cents(text)


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "$0.00"),
        (5, "$0.05"),
        (9_995, "$99.95"),
        (125_000, "$1,250.00"),
        (1_000_000, "$10,000.00"),
    ],
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text
    assert parse_cents(text) == cents


def test_order_total_is_the_sum_of_its_lines() -> None:
    items = [
        LineItem(sku="MUG", quantity=3, unit_price_cents=1_200),
        LineItem(sku="LAPTOP", quantity=2, unit_price_cents=149_900),
    ]
    order = Order(
        customer="ada@example.com", items=items, shipping_address="1 Main St", card_expiry="12/30"
    )

    assert [item.total_cents for item in items] == [3_600, 299_800]
    assert order.total_cents == 303_400
