"""The boundary, as the worker's payload converter holds it: what any client may send, read as
OrderWorkflow's handlers take it. Each case is JSON as a client sends it, never a Python object."""

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter
from support.orders import ORDER
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

from payloads.converter import MALFORMED_MESSAGE, StrictPayloadConverter, shape
from shared import ApproveOrder, CancelOrder, Order, OrderError, RejectOrder
from shop.rules import (
    MAX_APPROVAL_TIMEOUT_SECONDS,
    MAX_LINE_ITEMS,
    MAX_QUANTITY,
    MAX_TEXT_LENGTH,
    MAX_TOTAL_CENTS,
    MAX_UNIT_PRICE_CENTS,
    MIN_APPROVAL_TIMEOUT_SECONDS,
)
from tools.order_schema import SCHEMA_FILE, order_schema

CONVERTER = StrictPayloadConverter()
ITEM = ORDER.items[0].model_dump()


def sent(value: object) -> Payload:
    """`value` as the CLI sends it: JSON text with the json/plain encoding."""
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def order_json(**changes: Any) -> dict[str, Any]:
    return ORDER.model_dump(mode="json") | changes


def with_item(**changes: Any) -> dict[str, Any]:
    return order_json(items=[ITEM | changes])


def refusal_of(payload: Payload, type_hint: Any = Order) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        CONVERTER.from_payloads([payload], [type_hint])
    return refused.value


def read(value: object, type_hint: Any = Order) -> Any:
    return CONVERTER.from_payloads([sent(value)], [type_hint])[0]


# --- Orders --------------------------------------------------------------------------------------


def test_a_sent_order_reads_back_as_itself() -> None:
    assert read(order_json()) == ORDER


def test_unknown_keys_are_ignored() -> None:
    assert read(order_json(coupon="FREE")) == ORDER


def test_a_models_type_adapter_is_built_once_not_per_converter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sandbox makes a converter for every order it runs; none builds its own adapters."""
    built: list[object] = []
    build = TypeAdapter.__init__

    def counted(adapter: TypeAdapter[Any], type_: Any, *args: Any, **kwargs: Any) -> None:
        built.append(type_)
        build(adapter, type_, *args, **kwargs)

    monkeypatch.setattr(TypeAdapter, "__init__", counted)
    for _ in range(3):
        assert StrictPayloadConverter().from_payloads([sent({})], [CancelOrder]) == [CancelOrder()]
    assert built.count(CancelOrder) <= 1


@pytest.mark.parametrize(
    ("order", "problem"),
    [
        (order_json(items=[]), "items: List should have at least 1 item"),
        (order_json(items=[ITEM] * (MAX_LINE_ITEMS + 1)), f"at most {MAX_LINE_ITEMS} items"),
        (with_item(quantity=0), "items[0].quantity: Input should be greater than or equal to 1"),
        (with_item(quantity=-5), "(got -5)"),
        (with_item(quantity=MAX_QUANTITY + 1), f"(got {MAX_QUANTITY + 1})"),
        (with_item(quantity=10**30), "items[0].quantity"),
        (with_item(quantity=10**400), "(got a number of 401 digits)"),
        (with_item(quantity=2.5), "items[0].quantity: Input should be a valid integer (got 2.5)"),
        (with_item(quantity=True), "(got true)"),
        (with_item(quantity="2"), "(got '2')"),
        (with_item(quantity=None), "(got null)"),
        (with_item(unit_price_cents=-1), "items[0].unit_price_cents"),
        (with_item(unit_price_cents=MAX_UNIT_PRICE_CENTS + 1), "unit_price_cents"),
        (with_item(sku=" "), "items[0].sku: must not be blank"),
        (
            order_json(
                items=[ITEM | {"quantity": MAX_QUANTITY, "unit_price_cents": MAX_UNIT_PRICE_CENTS}]
                * 2
            ),
            "input: the total may be at most $10,000,000.00 (got $200,000,000.00)",
        ),
        (order_json(card_expiry="13/30"), "card_expiry: card expiry month must be 01 to 12"),
        (order_json(card_expiry="12-30"), "card_expiry: card expiry must be MM/YY"),
        (order_json(card_expiry=""), "card_expiry"),
        (order_json(approval_timeout_seconds=0), "approval_timeout_seconds: Input should be"),
        (order_json(approval_timeout_seconds=0.999), "(got 0.999)"),
        (order_json(approval_timeout_seconds=-1), "(got -1)"),
        (
            order_json(approval_timeout_seconds=MAX_APPROVAL_TIMEOUT_SECONDS + 1),
            "approval_timeout_seconds",
        ),
        (order_json(approval_timeout_seconds="30"), "approval_timeout_seconds"),
        (order_json(approval_threshold_cents=-1), "approval_threshold_cents"),
        (order_json(approval_threshold_cents=10**20), "approval_threshold_cents"),
        (order_json(inventory_outage_attempts=-1), "inventory_outage_attempts"),
        (order_json(customer=""), "customer: String should have at least 1 character"),
        (order_json(customer=" \t"), "customer: must not be blank"),
        (order_json(customer="x" * (MAX_TEXT_LENGTH + 1)), "customer"),
        (order_json(customer=7), "customer: Input should be a valid string (got 7)"),
        (order_json(shipping_address=""), "shipping_address"),
        (order_json(pack="yes"), "pack: Input should be a valid boolean (got 'yes')"),
        (order_json(items={}), "items: Input should be a valid array (got an object)"),
        (order_json(items=["T-SHIRT"]), "items[0]: Input should be an object"),
    ],
)
def test_an_invalid_order_is_refused_as_invalid_order_naming_the_field(
    order: dict[str, Any], problem: str
) -> None:
    refused = refusal_of(sent(order))
    assert refused.type == OrderError.INVALID_ORDER
    assert refused.non_retryable
    assert refused.message.startswith("Invalid order: ")
    assert problem in refused.message


@pytest.mark.parametrize("number", ["1e999", "-1e999", "9" * 400])
def test_a_number_beyond_any_float_is_refused(number: str) -> None:
    text = json.dumps(order_json()).replace(
        '"approval_timeout_seconds": 30.0', f'"x": 0, "approval_timeout_seconds": {number}'
    )
    refused = refusal_of(Payload(metadata={"encoding": b"json/plain"}, data=text.encode()))
    assert "approval_timeout_seconds: Input should be a finite number" in refused.message


@pytest.mark.parametrize(
    "order",
    [
        with_item(quantity=1),
        with_item(quantity=MAX_QUANTITY),
        with_item(unit_price_cents=0),
        with_item(unit_price_cents=MAX_UNIT_PRICE_CENTS),
        order_json(items=[ITEM] * MAX_LINE_ITEMS),
        order_json(approval_timeout_seconds=MIN_APPROVAL_TIMEOUT_SECONDS),
        order_json(approval_timeout_seconds=MAX_APPROVAL_TIMEOUT_SECONDS),
        order_json(approval_timeout_seconds=600),
        order_json(approval_threshold_cents=MAX_TOTAL_CENTS),
        order_json(customer="Zoë Ångström 🚀", shipping_address="東京都千代田区1-1"),
        order_json(customer="x" * MAX_TEXT_LENGTH),
        order_json(card_expiry="01/00"),
    ],
)
def test_an_order_at_the_edges_is_accepted(order: dict[str, Any]) -> None:
    assert isinstance(read(order), Order)


def test_every_problem_is_listed_at_once() -> None:
    refused = refusal_of(sent({"customer": "x"}))
    assert refused.message == (
        "Invalid order: items: Field required; shipping_address: Field required;"
        " card_expiry: Field required"
    )


@pytest.mark.parametrize(
    ("value", "got"), [(None, "null"), ("yes", "'yes'"), (5, "5"), ([], "a list of 0")]
)
def test_an_order_must_be_an_object(value: object, got: str) -> None:
    refused = refusal_of(sent(value))
    assert refused.message == f"Invalid order: input: Input should be an object (got {got})"


@pytest.mark.parametrize(
    "encoding", [b"json/protobuf", b"binary/encrypted", b"binary/null", b"binary/plain"]
)
def test_a_payload_that_is_not_json_is_refused_naming_its_encoding(encoding: bytes) -> None:
    refused = refusal_of(Payload(metadata={"encoding": encoding}, data=b"{}"))
    assert refused.message == f"Invalid order: not JSON (encoding {encoding.decode()})"


# --- Messages ------------------------------------------------------------------------------------


@pytest.mark.parametrize("message_type", [ApproveOrder, RejectOrder, CancelOrder])
def test_null_is_a_bare_message(message_type: type) -> None:
    assert read(None, message_type | None) is None
    assert read({}, message_type | None) == message_type()


def test_a_malformed_message_is_refused_naming_what_to_send() -> None:
    refused = refusal_of(sent({"reason": 5}), CancelOrder | None)
    assert refused.type == MALFORMED_MESSAGE
    assert refused.message == (
        'expected {"reason": string (optional)} or nothing:'
        " reason: Input should be a valid string (got 5)"
    )


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
def test_any_json_is_an_order_or_an_invalid_order(value: object) -> None:
    """Whatever a client sends, the converter returns an Order or refuses it as InvalidOrder."""
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())
    try:
        order = CONVERTER.from_payloads([payload], [Order])[0]
    except ApplicationError as err:
        refused = err
    else:
        assert isinstance(order, Order)
        return
    assert refused.type == OrderError.INVALID_ORDER
    assert ": " in refused.message


@given(
    quantity=st.integers(min_value=-(2**70), max_value=2**70),
    price=st.integers(min_value=-(2**70), max_value=2**70),
    timeout=st.floats(allow_nan=False, allow_infinity=False),
)
def test_the_order_holds_to_its_bounds(quantity: int, price: int, timeout: float) -> None:
    value = with_item(quantity=quantity, unit_price_cents=price) | {
        "approval_timeout_seconds": timeout
    }
    expected_valid = (
        1 <= quantity <= MAX_QUANTITY
        and 0 <= price <= MAX_UNIT_PRICE_CENTS
        and quantity * price <= MAX_TOTAL_CENTS
        and MIN_APPROVAL_TIMEOUT_SECONDS <= timeout <= MAX_APPROVAL_TIMEOUT_SECONDS
    )
    try:
        read(value)
    except ApplicationError:
        assert not expected_valid
    else:
        assert expected_valid


def test_the_published_order_schema_is_the_models() -> None:
    """docs/order.schema.json is for clients in other languages: it must say what is checked."""
    assert SCHEMA_FILE.read_text() == order_schema(), "run: uv run python tools/order_schema.py"
