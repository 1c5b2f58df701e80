"""The boundary, as the worker's payload converter holds it: what any client may send, read as
OrderWorkflow's handlers take it. Each case is JSON as a client sends it, never a Python object."""

import json
import re
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from support.orders import ORDER
from temporalio.api.common.v1 import Payload
from temporalio.exceptions import ApplicationError

from payloads.converter import MALFORMED_MESSAGE, StrictPayloadConverter, problems, shape
from shared import ApproveOrder, CancelOrder, Order, OrderError, Placing, RejectOrder
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


# --- Text is data, never layout ------------------------------------------------------------------

# Every text field a client fills, by its model and its path in the refusal.
TEXT_FIELDS: list[tuple[type[BaseModel], str]] = [
    (Order, "customer"),
    (Order, "shipping_address"),
    (Order, "items[0].sku"),
    (ApproveOrder, "by"),
    (ApproveOrder, "reason"),
    (RejectOrder, "by"),
    (RejectOrder, "reason"),
    (CancelOrder, "reason"),
    (Placing, "by"),
]
PROOF_FIELDS: list[tuple[type[BaseModel], str]] = [
    (ApproveOrder, "proof"),
    (RejectOrder, "proof"),
    (Placing, "proof"),
]

# Characters that would rewrite what a terminal, a log or a page shows: C0 and C1 controls, format
# characters such as the bidi overrides and isolates, and the line and paragraph separators.
LAYOUT = {
    "NUL": "\x00",
    "tab": "\t",
    "newline": "\n",
    "carriage return": "\r",
    "erase line": "\x1b[2K",
    "delete": "\x7f",
    "C1 CSI": "\x9b[2K",
    "zero-width space": "\u200b",
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "pop directional isolate": "\u2069",
    "line separator": "\u2028",
    "paragraph separator": "\u2029",
    "byte order mark": "\ufeff",
}


def is_layout(char: str) -> bool:
    """The rule, written out: Unicode categories Cc, Cf, Zl and Zp, the bidi controls, and lone
    surrogates."""
    return (
        unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp", "Cs"}
        or "\u202a" <= char <= "\u202e"
        or "\u2066" <= char <= "\u2069"
    )


def with_text(model: type[BaseModel], path: str, text: str) -> dict[str, Any]:
    """A valid message of `model` as JSON, with `text` at `path`."""
    if model is not Order:
        return {path: text}
    return with_item(sku=text) if path == "items[0].sku" else order_json(**{path: text})


def field_id(model: type[BaseModel], path: str) -> str:
    return f"{model.__name__}.{path}"


def handler_type(model: type[BaseModel]) -> Any:
    """The type the model's handler takes: an order, or a message that may be left out."""
    return model if model is Order else model | None


@pytest.mark.parametrize("layout", LAYOUT.values(), ids=LAYOUT)
@pytest.mark.parametrize(("model", "path"), TEXT_FIELDS, ids=[field_id(*f) for f in TEXT_FIELDS])
def test_a_control_or_format_character_in_any_text_field_is_refused_naming_the_field(
    model: type[BaseModel], path: str, layout: str
) -> None:
    refused = refusal_of(sent(with_text(model, path, f"ok{layout}ok")), handler_type(model))
    code = f"U+{ord(layout[0]):04X}"
    problem = f"{path}: must not contain control or format characters (found {code})"
    assert problem in refused.message
    assert refused.type == (OrderError.INVALID_ORDER if model is Order else MALFORMED_MESSAGE)
    assert refused.message.isprintable(), "the refusal itself is one clean line"


@pytest.mark.parametrize("proof", ["ABCDEF:12", "key id:12", "ab:cd\x1b[2K", "ab:cd\u202e", "é:1"])
@pytest.mark.parametrize(("model", "path"), PROOF_FIELDS, ids=[field_id(*f) for f in PROOF_FIELDS])
def test_a_proof_holds_only_its_own_characters(
    model: type[BaseModel], path: str, proof: str
) -> None:
    refused = refusal_of(sent({path: proof}), handler_type(model))
    assert f"{path}: String should match pattern '^[0-9a-z:-]*$'" in refused.message
    assert refused.message.isprintable()


def test_a_cancel_reason_is_bounded_like_every_text() -> None:
    longest = CancelOrder(reason="x" * MAX_TEXT_LENGTH)
    assert read(longest.model_dump(), CancelOrder | None) == longest
    refused = refusal_of(sent({"reason": "x" * 200_000}), CancelOrder | None)
    assert f"reason: String should have at most {MAX_TEXT_LENGTH} characters" in refused.message
    assert len(refused.message) < 200


def layout_free_and_bounded(path: str, text: str) -> bool:
    """Whether the models should take `text` at `path`: the rule, written out again."""
    if path == "proof":
        return len(text) <= 100 and re.fullmatch("[0-9a-z:-]*", text) is not None
    required = path in ("customer", "shipping_address", "items[0].sku")
    return (
        len(text) <= MAX_TEXT_LENGTH
        and not any(is_layout(char) for char in text)
        and (bool(text.strip()) or not required)
    )


# The bidi controls, the separators and a lone surrogate (what Python makes of a byte that is not
# UTF-8 in a script's arguments) are few among their categories: drawn on their own as well.
LAYOUT_CHARACTERS = st.characters(categories=["Cc", "Cf"]) | st.sampled_from(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029\udcff"
)
ANY_TEXT = (
    st.text()
    # A list, not st.text(alphabet): text() would rarely draw the few characters sampled above.
    | st.lists(st.characters() | LAYOUT_CHARACTERS).map("".join)
    | st.text("0123456789abcdef:-")  # a proof's own characters
    | st.text(min_size=MAX_TEXT_LENGTH - 1, max_size=MAX_TEXT_LENGTH + 1)
)


def strings_in(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings_in(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings_in(item)]
    return []


@given(
    field=st.sampled_from(TEXT_FIELDS + PROOF_FIELDS),
    reader=st.sampled_from(["worker", "script", "form"]),
    text=ANY_TEXT,
)
def test_any_text_is_refused_in_one_clean_line_or_taken_without_layout(
    field: tuple[type[BaseModel], str], reader: str, text: str
) -> None:
    """Through the worker's converter (JSON from any client), as the scripts build a message
    (strict) and as the inbox reads its form (lax): the same models, the same answer."""
    model, path = field
    value = with_text(model, path, text)
    try:
        if reader == "worker":
            taken = read(value, handler_type(model))
        else:
            taken = model.model_validate(value, strict=reader == "script")
    except ApplicationError as err:
        said = [err.message]
    except ValidationError as err:
        said = problems(err)
    else:
        assert layout_free_and_bounded(path, text)
        assert not any(is_layout(char) for char in "".join(strings_in(taken.model_dump())))
        return
    assert not layout_free_and_bounded(path, text)
    assert all(problem.isprintable() for problem in said), said


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
