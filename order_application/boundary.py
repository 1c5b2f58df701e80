"""How OrderWorkflow reads what any Temporal client sends it: strictly, naming every problem."""

import dataclasses
import math
import typing
from collections.abc import Sequence
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.worker import (
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from shared import shown

T = TypeVar("T")

NOTHING_SENT = RawValue(Payload())
"""The default of every handler's argument: what a client that sends no input sends."""


class MalformedMessage(ValueError):
    """A message that cannot be read as the dataclass it should be; `problems` says why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class TooManyArguments(RawValue):
    """Stands in for the arguments of a message that came with more than one."""

    count: int = 0


def read_message(sent: RawValue, message_type: type[T]) -> T:
    """The message a client sent as `message_type`; no input or JSON null gives its defaults.

    Reading the raw payload here, not in the SDK, is what keeps a malformed message from
    failing the workflow task: the SDK would raise before any handler could refuse it.
    """
    if isinstance(sent, TooManyArguments):
        raise MalformedMessage([f"expected one argument, got {sent.count}"])
    if sent is NOTHING_SENT:
        try:
            return from_json(message_type, None)
        except MalformedMessage:
            raise MalformedMessage(
                [f"input: expected an object {shape(message_type)}, got no input"]
            ) from None
    try:
        value = workflow.payload_converter().from_payload(sent.payload)
    except Exception as err:  # An encoding the worker does not know, or bytes that are not JSON.
        encoding = sent.payload.metadata.get("encoding", b"none").decode(errors="replace")
        why = f"not JSON: {err}" if encoding == "json/plain" else f"not JSON (encoding {encoding})"
        raise MalformedMessage([why]) from err
    return from_json(message_type, value)


def from_json(message_type: type[T], value: object) -> T:
    """Builds `message_type` from a JSON value, checking every field's type; unknown keys are
    ignored. Stricter than the SDK's converter: a bool or 2.5 is no whole number here."""
    problems: list[str] = []
    if value is None and _all_fields_have_defaults(message_type):
        value = {}
    message = _convert(message_type, value, "", problems)
    if problems:
        raise MalformedMessage(problems)
    return typing.cast(T, message)


def shape(message_type: type) -> str:
    """The JSON a client should send, e.g. {"reason": string}, for error messages."""
    hints = typing.get_type_hints(message_type)
    fields = ", ".join(
        f'"{field.name}": {_type_name(hints[field.name])}'
        + ("" if _required(field) else " (optional)")
        for field in dataclasses.fields(message_type)
    )
    return "{" + fields + "}"


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _all_fields_have_defaults(message_type: type) -> bool:
    return not any(_required(field) for field in dataclasses.fields(message_type))


def _convert(hint: Any, value: object, path: str, problems: list[str]) -> object:
    """The value as `hint`, or None after adding a problem named by its path."""
    where = path or "input"
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object {shape(hint)}, got {_kind(value)}")
            return None
        hints = typing.get_type_hints(hint)
        fields: dict[str, object] = {}
        for field in dataclasses.fields(hint):
            field_path = f"{path}.{field.name}" if path else field.name
            if field.name in value:
                fields[field.name] = _convert(
                    hints[field.name], value[field.name], field_path, problems
                )
            elif _required(field):
                problems.append(f"{field_path}: missing")
        return None if problems else hint(**fields)
    if typing.get_origin(hint) is list:
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list, got {_kind(value)}")
            return None
        (item_hint,) = typing.get_args(hint)
        return [
            _convert(item_hint, item, f"{where}[{i}]", problems) for i, item in enumerate(value)
        ]
    if hint is str and isinstance(value, str):
        return value
    if hint is bool and isinstance(value, bool):
        return value
    if hint is int and _is_whole_number(value):
        return int(typing.cast(float, value))
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # A whole number of hundreds of digits: beyond any float.
            problems.append(f"{where}: expected a number in range, got {_kind(value)}")
            return None
    problems.append(f"{where}: expected {_type_name(hint)}, got {_kind(value)}")
    return None


def _is_whole_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is list:
        return f"[{_type_name(typing.get_args(hint)[0])}, ...]"
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return shape(hint)
    names = {str: "string", int: "whole number", float: "number", bool: "true or false"}
    if hint in names:
        return names[hint]
    return getattr(hint, "__name__", str(hint))


def _kind(value: object) -> str:
    """What a JSON value is, briefly, for an error message (never the whole value)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return shown(value)
    if isinstance(value, str):
        return f"string {value[:20]!r}" + ("..." if len(value) > 20 else "")
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# --- Argument count ------------------------------------------------------------------------------


class OneArgumentPerMessage(Interceptor):
    """Lets OrderWorkflow judge a message sent with more than one argument.

    The SDK calls a handler with every argument a client sent, so two arguments to a
    one-argument handler raise TypeError and fail the workflow task. This hands the handler a
    TooManyArguments instead, which read_message refuses like any other malformed message.
    Queries take no arguments: any sent are dropped.
    """

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _OneArgument


def _one(args: Sequence[Any]) -> Sequence[Any]:
    return [TooManyArguments(Payload(), len(args))] if len(args) > 1 else args


class _OneArgument(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        input.args = _one(input.args)
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        input.args = _one(input.args)
        await super().handle_signal(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        input.args = _one(input.args)
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        input.args = _one(input.args)
        return await super().handle_update_handler(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        input.args = []
        return await super().handle_query(input)
