"""The shop's rules: what an order may hold, the catalogue, money and card expiry dates."""

import re
from dataclasses import dataclass
from datetime import date

DEFAULT_APPROVAL_TIMEOUT_SECONDS = 30.0

# What an order may hold. Any Temporal client can start one, so the workflow refuses what no
# shop would take: these bounds also keep every amount well inside a signed 64-bit integer, for
# clients written in other languages.
MAX_LINE_ITEMS = 100
MAX_QUANTITY = 1_000
MAX_UNIT_PRICE_CENTS = 10_000_000  # $100,000.00
MAX_TOTAL_CENTS = 1_000_000_000  # $10,000,000.00
MAX_TEXT_LENGTH = 500
# An approval wait shorter than a second is no wait at all: the order would charge, then refund.
MIN_APPROVAL_TIMEOUT_SECONDS = 1.0
MAX_APPROVAL_TIMEOUT_SECONDS = 7 * 24 * 3600.0
MAX_OUTAGE_ATTEMPTS = 100

CATALOG = {
    "T-SHIRT": 2_500,
    "STICKERS": 500,
    "MUG": 1_200,
    "HOODIE": 6_000,
    "LAPTOP": 149_900,
    "SOLD-OUT": 999,
}
"""Unit prices in cents by SKU. SOLD-OUT is never in stock."""


def format_cents(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


_AMOUNT = re.compile(r"\$?([0-9]{1,9})(?:\.([0-9]{2}))?")


def parse_cents(text: str) -> int:
    """Parses a dollar amount such as 100, 99.95 or $1,250.00 into integer cents."""
    match = _AMOUNT.fullmatch(text.strip().replace(",", ""))
    if not match:
        raise ValueError(f"amount must be dollars with optional cents, e.g. 99.95 (got {text!r})")
    return int(match[1]) * 100 + int(match[2] or 0)


_EXPIRY = re.compile(r"([0-9]{2})/([0-9]{2})")


@dataclass(frozen=True, order=True)
class CardExpiry:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.month:02d}/{self.year % 100:02d}"

    def is_expired(self, today: date) -> bool:
        """A card works through the last day of its expiry month."""
        return (self.year, self.month) < (today.year, today.month)


def parse_card_expiry(text: str) -> CardExpiry:
    """Parses MM/YY (e.g. 12/30); raises ValueError on anything else."""
    match = _EXPIRY.fullmatch(text.strip())
    if not match:
        raise ValueError(f"card expiry must be MM/YY, e.g. 12/30 (got {text[:20]!r})")
    month, year = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise ValueError(f"card expiry month must be 01 to 12 (got {text!r})")
    return CardExpiry(year=2000 + year, month=month)
