"""The order check and the strict message reader, at their edges and on arbitrary JSON."""

import dataclasses
import json
import math
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_workflow import ORDER

from boundary import MalformedMessage, from_json, shape
from shared import (
    MAX_APPROVAL_TIMEOUT_SECONDS,
    MAX_LINE_ITEMS,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    MAX_TOTAL_CENTS,
    MAX_UNIT_PRICE_CENTS,
    MIN_APPROVAL_TIMEOUT_SECONDS,
    ApproveOrder,
    CancelOrder,
    LineItem,
    Order,
    RejectOrder,
    order_problems,
)

ITEM = ORDER.items[0]


def with_item(**changes: Any) -> Order:
    return replace(ORDER, items=[replace(ITEM, **changes)])


def as_json(order: Order) -> dict[str, Any]:
    """The order as a client sends it: JSON, then read back as Python values."""
    value: dict[str, Any] = json.loads(json.dumps(dataclasses.asdict(order)))
    return value


# --- order_problems ------------------------------------------------------------------------------


def test_the_sample_order_is_valid() -> None:
    assert order_problems(ORDER) == []


@pytest.mark.parametrize(
    ("order", "problem"),
    [
        (replace(ORDER, items=[]), "items: an order needs at least one item"),
        (replace(ORDER, items=[ITEM] * (MAX_LINE_ITEMS + 1)), f"at most {MAX_LINE_ITEMS}"),
        (with_item(quantity=0), "items[0].quantity: must be 1 to"),
        (with_item(quantity=-5), "(got -5)"),
        (with_item(quantity=MAX_QUANTITY + 1), f"(got {MAX_QUANTITY + 1})"),
        (with_item(quantity=10**30), "items[0].quantity"),
        (with_item(unit_price_cents=-1), "items[0].unit_price_cents: must be 0 to"),
        (with_item(unit_price_cents=MAX_UNIT_PRICE_CENTS + 1), "unit_price_cents"),
        (with_item(sku=" "), "items[0].sku"),
        (
            replace(ORDER, items=[LineItem("LAPTOP", MAX_QUANTITY, MAX_UNIT_PRICE_CENTS)] * 2),
            "total: at most $10,000,000.00",
        ),
        (replace(ORDER, card_expiry="13/30"), "card_expiry: card expiry month must be 01 to 12"),
        (replace(ORDER, card_expiry="12-30"), "card_expiry: card expiry must be MM/YY"),
        (replace(ORDER, card_expiry=""), "card_expiry"),
        (replace(ORDER, approval_timeout_seconds=0), "approval_timeout_seconds: must be 1 to"),
        (replace(ORDER, approval_timeout_seconds=0.999), "(got 0.999)"),
        (replace(ORDER, approval_timeout_seconds=1e-7), "(got 1e-07)"),
        (replace(ORDER, approval_timeout_seconds=-1), "(got -1)"),
        (replace(ORDER, approval_timeout_seconds=math.inf), "(got inf)"),
        (replace(ORDER, approval_timeout_seconds=-math.inf), "(got -inf)"),
        (replace(ORDER, approval_timeout_seconds=math.nan), "(got nan)"),
        (
            replace(ORDER, approval_timeout_seconds=MAX_APPROVAL_TIMEOUT_SECONDS + 1),
            "approval_timeout_seconds",
        ),
        (replace(ORDER, approval_threshold_cents=-1), "approval_threshold_cents: must be 0 to"),
        (replace(ORDER, approval_threshold_cents=10**20), "approval_threshold_cents"),
        (with_item(quantity=10**400), "(got a number of 401 digits)"),
        (replace(ORDER, inventory_outage_attempts=-1), "inventory_outage_attempts"),
        (replace(ORDER, customer=""), "customer: must be 1 to"),
        (replace(ORDER, customer=" \t"), "customer: must be 1 to"),
        (replace(ORDER, customer="x" * (MAX_TEXT_LENGTH + 1)), "customer"),
        (replace(ORDER, shipping_address=""), "shipping_address: must be 1 to"),
    ],
)
def test_order_problems_names_the_problem(order: Order, problem: str) -> None:
    problems = order_problems(order)
    assert any(problem in found for found in problems), problems


@pytest.mark.parametrize(
    "order",
    [
        with_item(quantity=1),
        with_item(quantity=MAX_QUANTITY),
        with_item(unit_price_cents=0),
        with_item(unit_price_cents=MAX_UNIT_PRICE_CENTS),
        replace(ORDER, items=[ITEM] * MAX_LINE_ITEMS),
        replace(ORDER, approval_timeout_seconds=MIN_APPROVAL_TIMEOUT_SECONDS),
        replace(ORDER, approval_timeout_seconds=MAX_APPROVAL_TIMEOUT_SECONDS),
        replace(ORDER, approval_threshold_cents=0),
        replace(ORDER, approval_threshold_cents=MAX_TOTAL_CENTS),
        replace(ORDER, customer="Zoë Ångström 🚀", shipping_address="東京都千代田区1-1"),
        replace(ORDER, customer="x" * MAX_TEXT_LENGTH),
        replace(ORDER, card_expiry="01/00"),
    ],
)
def test_order_problems_accepts_the_edges(order: Order) -> None:
    assert order_problems(order) == []


def test_every_problem_is_listed_at_once() -> None:
    order = Order(customer="", items=[], shipping_address="", card_expiry="x")
    problems = order_problems(order)
    assert len(problems) == 4, problems


# --- from_json -----------------------------------------------------------------------------------


def test_a_sent_order_reads_back_as_itself() -> None:
    assert from_json(Order, as_json(ORDER)) == ORDER


def test_unknown_keys_are_ignored() -> None:
    assert from_json(Order, as_json(ORDER) | {"coupon": "FREE"}) == ORDER


def test_a_whole_float_is_a_whole_number() -> None:
    sent = as_json(ORDER)
    sent["items"][0]["quantity"] = 1.0
    assert from_json(Order, sent) == ORDER


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda o: o["items"][0].update(quantity=2.5), "items[0].quantity: expected whole number"),
        (lambda o: o["items"][0].update(quantity=True), "got true"),
        (lambda o: o["items"][0].update(quantity="2"), "got string '2'"),
        (lambda o: o["items"][0].update(quantity=None), "got null"),
        (lambda o: o["items"][0].update(quantity=math.inf), "got inf"),
        (lambda o: o["items"][0].pop("sku"), "items[0].sku: missing"),
        (lambda o: o.update(items={}), "items: expected a list, got an object"),
        (lambda o: o.update(items=["T-SHIRT"]), "items[0]: expected an object"),
        (lambda o: o.update(customer=7), "customer: expected string, got 7"),
        (lambda o: o.update(pack="yes"), "pack: expected true or false"),
        (lambda o: o.update(approval_timeout_seconds="30"), "expected number"),
        (lambda o: o.pop("card_expiry"), "card_expiry: missing"),
    ],
)
def test_a_malformed_order_names_the_field(change: Any, problem: str) -> None:
    sent = as_json(ORDER)
    change(sent)
    with pytest.raises(MalformedMessage) as refused:
        from_json(Order, sent)
    assert any(problem in found for found in refused.value.problems), refused.value.problems


def test_every_missing_field_is_named() -> None:
    with pytest.raises(MalformedMessage) as refused:
        from_json(Order, {"customer": "x"})
    assert refused.value.problems == [
        "items: missing",
        "shipping_address: missing",
        "card_expiry: missing",
    ]


@pytest.mark.parametrize("sent", [None, "yes", 5, [], True])
def test_an_order_must_be_an_object(sent: object) -> None:
    with pytest.raises(MalformedMessage, match="input: expected an object"):
        from_json(Order, sent)


@pytest.mark.parametrize(
    ("message_type", "default"),
    [(ApproveOrder, ApproveOrder()), (RejectOrder, RejectOrder()), (CancelOrder, CancelOrder())],
)
def test_a_bare_message_takes_its_defaults(message_type: type, default: object) -> None:
    assert from_json(message_type, None) == default
    assert from_json(message_type, {}) == default


def test_shape_tells_a_client_what_to_send() -> None:
    assert shape(CancelOrder) == '{"reason": string (optional)}'


# --- Anything at all -----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)

# Whole numbers beyond any float or int64, as JSON allows and another client may send.
HUGE = st.integers(min_value=10**300, max_value=10**400) | st.integers(max_value=-(10**300))

ORDER_FIELDS = st.fixed_dictionaries(
    {
        "customer": st.text(),
        "items": st.lists(
            st.fixed_dictionaries(
                {"sku": st.text(), "quantity": JSON | HUGE, "unit_price_cents": st.integers()}
            ),
            max_size=3,
        ),
        "shipping_address": st.text(),
        "card_expiry": st.text(max_size=6),
    },
    optional={
        "approval_timeout_seconds": st.floats() | st.integers() | HUGE,
        "approval_threshold_cents": st.integers(),
        "pack": JSON,
    },
)


@given(JSON | ORDER_FIELDS)
def test_any_json_is_an_order_or_a_list_of_problems(sent: object) -> None:
    """Whatever a client sends, reading and checking it ends in an Order or named problems."""
    try:
        order = from_json(Order, sent)
    except MalformedMessage as refused:
        problems = refused.problems
        assert problems
    else:
        problems = order_problems(order)
    assert all(isinstance(problem, str) and ": " in problem for problem in problems)


@given(
    quantity=st.integers(min_value=-(2**70), max_value=2**70),
    price=st.integers(min_value=-(2**70), max_value=2**70),
    timeout=st.floats(allow_nan=True, allow_infinity=True),
)
def test_order_problems_holds_to_its_bounds(quantity: int, price: int, timeout: float) -> None:
    order = replace(
        with_item(quantity=quantity, unit_price_cents=price), approval_timeout_seconds=timeout
    )
    expected_valid = (
        1 <= quantity <= MAX_QUANTITY
        and 0 <= price <= MAX_UNIT_PRICE_CENTS
        and quantity * price <= MAX_TOTAL_CENTS
        and MIN_APPROVAL_TIMEOUT_SECONDS <= timeout <= MAX_APPROVAL_TIMEOUT_SECONDS
    )
    assert (order_problems(order) == []) == expected_valid
