"""The payload converter of every client and worker of the orders: Pydantic models as JSON, and
a Temporal failure for what does not fit."""

# The worker's payload converter is the SDK's Pydantic converter, with one change: a payload that
# does not make the model its handler takes raises a Temporal failure instead of a Python error.
# The SDK then fails the *workflow* for a bad start (not its task, which would retry forever),
# rejects a bad update, and drops a bad signal with a log line. The worker's interceptor in
# interceptor.py does the same for what the converter never sees: the number of arguments.

import functools
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, PydanticPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.exceptions import ApplicationError

from shared import Order, OrderError

MALFORMED_MESSAGE = "MalformedMessage"
"""`type` of the failure that refuses a signal or update whose payload is not its model."""


def problems(err: ValidationError) -> list[str]:
    """Each problem Pydantic found, named by its field path, such as
    `items[0].quantity: Input should be greater than or equal to 1 (got -5)`."""
    found = []
    for error in err.errors(include_url=False):
        path = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        )
        where = path.lstrip(".") or "input"
        said = error["type"] == "missing" or "(got " in error["msg"]
        got = "" if said else f" (got {_brief(error['input'])})"
        found.append(f"{where}: {error['msg']}{got}")
    return found


def refusal(type_hint: Any, why: str) -> ApplicationError:
    """The failure that refuses a payload meant to be `type_hint`: InvalidOrder for an order,
    and for a message, the JSON its handler takes (e.g. {"reason": string (optional)})."""
    model = _model_of(type_hint)
    if model is Order:
        return ApplicationError(
            f"Invalid order: {why}", type=OrderError.INVALID_ORDER, non_retryable=True
        )
    if model is None:
        return ApplicationError(why, type=MALFORMED_MESSAGE, non_retryable=True)
    bare = " or nothing" if _optional(type_hint) else ""
    return ApplicationError(
        f"expected {shape(model)}{bare}: {why}", type=MALFORMED_MESSAGE, non_retryable=True
    )


def shape(model: type[BaseModel]) -> str:
    """The JSON a client should send, such as {"reason": string (optional)}."""
    names: dict[object, str] = {
        str: "string",
        int: "whole number",
        float: "number",
        bool: "true or false",
    }
    fields = ", ".join(
        f'"{name}": {names.get(field.annotation, "value")}'
        + ("" if field.is_required() else " (optional)")
        for name, field in model.model_fields.items()
    )
    return "{" + fields + "}"


# The sandbox makes a payload converter for each order it runs, and the SDK's JSON converter caches
# its TypeAdapters per instance, so each order built one for every model it read: about 5 ms of
# worker CPU per order, profiled. The models are passed through the sandbox, the same classes in
# every order, so one cache for the process builds each model's adapter once.
_TYPE_ADAPTERS = functools.lru_cache(maxsize=1024)(TypeAdapter)


class _JsonWithSharedAdapters(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint: Any = Any if type_hint is None else type_hint
        try:
            hash(hint)
        except TypeError:  # An unhashable hint cannot be a cache key.
            return TypeAdapter(hint).validate_json(payload.data)
        return _TYPE_ADAPTERS(hint).validate_json(payload.data)


# The SDK's encoding converters, JSON's replaced: made once, since the SDK makes a payload converter
# for every activation it decodes or encodes, and none of them keeps any state of its own.
_ENCODING_CONVERTERS = tuple(
    _JsonWithSharedAdapters() if isinstance(converter, JSONPlainPayloadConverter) else converter
    for converter in DefaultPayloadConverter.default_encoding_payload_converters
)


class StrictPayloadConverter(PydanticPayloadConverter):
    """The SDK's Pydantic converter, refusing with a Temporal failure what it cannot convert."""

    def __init__(self) -> None:
        CompositePayloadConverter.__init__(self, *_ENCODING_CONVERTERS)

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[type] | None = None
    ) -> list[Any]:
        hints: list[Any] = list(type_hints) if type_hints else [None] * len(payloads)
        return [self._read(payload, hint) for payload, hint in zip(payloads, hints, strict=True)]

    def _read(self, payload: Payload, type_hint: Any) -> Any:
        try:
            value = super().from_payloads([payload], [type_hint] if type_hint else None)[0]
        except ValidationError as err:
            raise refusal(type_hint, "; ".join(problems(err))) from None
        except Exception:  # An encoding this converter does not know, such as ciphertext.
            value = _UNREADABLE
        model = _model_of(type_hint)
        # Another encoding than JSON (binary/null, binary/plain) converts without Pydantic.
        if value is _UNREADABLE or (
            model is not None
            and not isinstance(value, model)
            and not (value is None and _optional(type_hint))
        ):
            encoding = payload.metadata.get("encoding", b"none").decode(errors="replace")[:40]
            printable = "".join(c if c.isprintable() else "?" for c in encoding)
            raise refusal(type_hint, f"not JSON (encoding {printable})")
        return value


_UNREADABLE = object()


PLAIN = DataConverter(payload_converter_class=StrictPayloadConverter)
"""This converter without encryption: for ORDER_ENCRYPTION=off, tests and replays."""


def _model_of(type_hint: Any) -> type[BaseModel] | None:
    """The model in `X` or `X | None`, if any."""
    for candidate in (type_hint, *typing.get_args(type_hint)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _optional(type_hint: Any) -> bool:
    """Whether `type_hint` is `X | None`."""
    return type(None) in typing.get_args(type_hint)


def _brief(value: object) -> str:
    """A value a client sent, briefly, for an error message (never a whole object)."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if value is not None else "null"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= 20 else f"a number of {len(text)} digits"
    if isinstance(value, str):
        return repr(value[:20]) + ("..." if len(value) > 20 else "")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "an object" if isinstance(value, dict) else type(value).__name__
