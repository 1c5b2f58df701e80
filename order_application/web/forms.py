"""The inbox's forms, read into the models the workflow checks them with: an order, a decision."""

from dataclasses import dataclass, field

from pydantic import ValidationError
from starlette.datastructures import FormData

from command_line.order_options import DEFAULT_ADDRESS, DEFAULT_CUSTOMER, SMALL_ORDER
from payloads.converter import problems
from shared import ApproveOrder, Order, RejectOrder
from shop.rules import CATALOG, format_cents, parse_cents

FORM_WIDE = ""
"""The `problems` key of a problem with the order as a whole, such as its total."""


def quantity_field(sku: str) -> str:
    return f"quantity-{sku}"


# The custom item's fields, by the LineItem field each one fills.
CUSTOM_ITEM = {
    "sku": "custom-sku",
    "quantity": "custom-quantity",
    "unit_price_cents": "custom-price",
}
# The order's own fields, by the form field that fills each.
ORDER_FIELDS = {"customer": "customer", "shipping_address": "address", "card_expiry": "card-expiry"}


@dataclass
class OrderForm:
    """What was typed, to show again, and each problem by the form field it belongs to."""

    values: dict[str, str]
    problems: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def blank() -> "OrderForm":
        """The starter's default order: 1 T-shirt, 2 sticker packs, for the default customer."""
        values = {quantity_field(item["sku"]): str(item["quantity"]) for item in SMALL_ORDER}
        values.update(customer=DEFAULT_CUSTOMER, address=DEFAULT_ADDRESS)
        return OrderForm(values)


def catalogue() -> list[tuple[str, str, str]]:
    """Each catalogue item: its SKU, its unit price, and its quantity field."""
    return [(sku, format_cents(cents), quantity_field(sku)) for sku, cents in CATALOG.items()]


def read_order_form(form: FormData) -> tuple[Order | None, OrderForm]:
    """The order the form describes, or None and the problems shown next to their fields."""
    values = {name: value.strip() for name, value in form.items() if isinstance(value, str)}
    typed = OrderForm(values)
    items: list[dict[str, object]] = []
    # Per item of the order, the form field of each of its LineItem fields.
    item_fields: list[dict[str, str]] = []
    for sku, cents in CATALOG.items():
        quantity = values.get(quantity_field(sku), "")
        if quantity not in ("", "0"):
            items.append({"sku": sku, "quantity": quantity, "unit_price_cents": cents})
            item_fields.append({"quantity": quantity_field(sku)})
    if any(values.get(name) for name in CUSTOM_ITEM.values()):
        price = values.get(CUSTOM_ITEM["unit_price_cents"], "")
        try:
            cents = parse_cents(price)
        except ValueError as err:
            typed.problems[CUSTOM_ITEM["unit_price_cents"]] = str(err)
            cents = 0
        sku = values.get(CUSTOM_ITEM["sku"], "").upper()
        quantity = values.get(CUSTOM_ITEM["quantity"], "")
        items.append({"sku": sku, "quantity": quantity, "unit_price_cents": cents})
        item_fields.append(CUSTOM_ITEM)
    try:
        # Lax, so that the model reads the form's text as numbers; its bounds are the workflow's.
        order = Order.model_validate(
            {"items": items}
            | {model: values.get(name, "") for model, name in ORDER_FIELDS.items()},
            strict=False,
        )
    except ValidationError as err:
        for error in err.errors(include_url=False):
            typed.problems.setdefault(_field_of(error["loc"], item_fields), error["msg"])
        return None, typed
    return (None if typed.problems else order), typed


def _field_of(location: tuple[int | str, ...], item_fields: list[dict[str, str]]) -> str:
    """The form field a problem at `location` (`items`, 0, `quantity`) belongs to."""
    match location:
        case ("items", int(index), str(name)) if name in item_fields[index]:
            return item_fields[index][name]
        case ("items", *_):
            return "items"
        case (str(name), *_) if name in ORDER_FIELDS:
            return ORDER_FIELDS[name]
    return FORM_WIDE


def read_decision_form(form: FormData) -> ApproveOrder | RejectOrder | str:
    """The decision a row's form makes, naming nobody (the sender proves who decides), or what
    is wrong with it, in words."""
    choice = form.get("decision")
    reason = form.get("reason", "")
    if choice not in ("approve", "reject") or not isinstance(reason, str):
        return "the form has no approve or reject in it; reload the page"
    reason = reason.strip()
    if choice == "reject" and not reason:
        return "a rejection needs a reason"
    try:
        return RejectOrder(reason=reason) if choice == "reject" else ApproveOrder(reason=reason)
    except ValidationError as err:
        return "; ".join(problems(err))
