"""Text others sent, printed: `printable` escapes what would act on a terminal or break a line,
in the scripts' reports and in the worker's log, and leaves ordinary text of any script alone."""

import io
import logging
import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.scripts import FORGED_LINE, FORGED_LINE_SHOWN

from command_line.reports import describe_result
from local.printable import printable
from observability.worker_log import EscapedFormatter, ExpectedFailuresOnOneLine
from shared import (
    ApprovalState,
    Confirmation,
    Decision,
    LineItem,
    OrderResult,
    Payment,
    Proof,
    Reservation,
    Shipment,
)
from shop.services import ServiceUnavailableError

NOT_TEXT = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})
"""Unicode categories that act instead of showing, or may: controls, formats (bidi, zero-width),
line and paragraph separators, lone surrogates, and code points not assigned yet."""
ORDINARY = st.characters(exclude_characters="\\").filter(
    lambda char: unicodedata.category(char) not in NOT_TEXT
)
"""Letters, digits, marks, punctuation, symbols and spaces of any script: nothing to escape."""


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Evil\x1b[2J\nType", r"Evil\x1b[2J\nType"),
        ("paid\r\x1b[2Kdelivered", r"paid\r\x1b[2Kdelivered"),
        ("tab\there", r"tab\there"),
        ("del\x7f c1-csi\x9b31m", r"del\x7f c1-csi\x9b31m"),
        ("\u202eevil.exe\u202c", r"\u202eevil.exe\u202c"),
        ("\u2066isolated\u2069 \u2067rtl\u2068", r"\u2066isolated\u2069 \u2067rtl\u2068"),
        ("zero\u200bwidth\u200d\ufeff", r"zero\u200bwidth\u200d\ufeff"),
        ("line\u2028paragraph\u2029", r"line\u2028paragraph\u2029"),
        ("lone \ud800 surrogate", r"lone \ud800 surrogate"),
        ("tag \U000e0041", r"tag \U000e0041"),
    ],
)
def test_what_would_act_on_a_terminal_is_shown_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "order-1a2b3c4d",
        "Zoë Ångström <zoe@example.com>",
        "中文客户 山田 太郎",
        "عميل",
        "📦 2 x MUG @ $12.00; refund: refund-9f8e",
        "non\u00a0breaking space",
        "",
    ],
)
def test_ordinary_text_of_any_script_is_left_alone(text: str) -> None:
    assert printable(text) == text


def test_a_backslash_typed_by_a_client_cannot_pass_for_an_escape() -> None:
    typed = r"order\n18:00:00"  # A backslash and an n, as someone typed them.
    assert printable(typed) == r"order\\n18:00:00"
    assert printable(typed) != printable("order\n18:00:00")


def _unescaped(shown: str) -> str:
    """The text `printable` was given, read back from what it showed."""
    named = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}
    return re.sub(
        r"\\(?:([\\tnr])|x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8}))",
        lambda found: named[found[1]] if found[1] else chr(int(found[0][2:], 16)),
        shown,
    )


@given(st.text())
def test_what_is_shown_is_one_line_of_visible_text_that_names_one_text(text: str) -> None:
    shown = printable(text)
    assert len(shown.splitlines()) <= 1  # Every line break Python knows of is escaped.
    assert not any(unicodedata.category(char) in NOT_TEXT for char in shown)
    assert _unescaped(shown) == text


@given(st.text(ORDINARY))
def test_text_with_nothing_to_escape_is_shown_as_it_is(text: str) -> None:
    assert printable(text) == text


def test_an_old_order_s_text_cannot_break_the_lines_of_its_report() -> None:
    """A delivered order recorded before its fields were checked, or by another client: built
    here without validation, as such a history replays."""
    result = OrderResult.model_construct(
        order_id="order-old",
        customer=f"ada@example.com{FORGED_LINE}",
        items=[LineItem.model_construct(sku=f"MUG\x1b]0;owned\x07{FORGED_LINE}", quantity=2,
                                        unit_price_cents=1200)],
        total_cents=2400,
        approval=ApprovalState.APPROVED,
        decision=Decision.model_construct(
            approval=ApprovalState.APPROVED, by="bob\u202e", at=datetime(2026, 1, 2, tzinfo=UTC),
            reason=f"fine{FORGED_LINE}", proof=Proof.NAME_GIVEN,
        ),
        payment=Payment.model_construct(transaction_id="txn-1", amount_cents=2400),
        reservation=Reservation.model_construct(reservation_id="rsv-1"),
        packing=None,
        shipment=Shipment.model_construct(
            tracking_number="trk-1", estimated_delivery=date(2026, 1, 5)
        ),
        confirmation=Confirmation.model_construct(message_id="msg-1"),
    )  # fmt: skip
    lines = describe_result(result).splitlines()

    assert len(lines) == 10, lines  # As many as for any order without packing.
    assert lines[1] == f"  customer:      ada@example.com{FORGED_LINE_SHOWN}"
    assert lines[2] == rf"  items:         2 x MUG\x1b]0;owned\x07{FORGED_LINE_SHOWN} @ $12.00"
    assert r"bob\u202e" in lines[4]
    assert lines[4].endswith(f"(fine{FORGED_LINE_SHOWN})")
    assert not any(char in line for line in lines for char in "\x1b\r\x07\u202e")


@pytest.fixture
def worker_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger printing as the worker's log does, and what it printed."""
    printed = io.StringIO()
    handler = logging.StreamHandler(printed)
    handler.setFormatter(EscapedFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger(f"test-worker-log-{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, printed
    logger.removeHandler(handler)


def test_the_worker_log_escapes_a_workflow_s_id_and_type_and_its_failure_text(
    worker_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, printed = worker_log
    workflow_id, workflow_type = f"order-1{FORGED_LINE}", "Evil\x1b[2J\nType"
    try:
        raise RuntimeError(f"cannot read {workflow_id}")
    except RuntimeError as err:
        # As the SDK reports a workflow task that failed: type and ID in the message, a traceback.
        logger.warning(
            f"Failed activation on workflow {workflow_type} with ID {workflow_id} and run ID r-1",
            exc_info=err,
        )
    logger.info("Order %s: refused %s: %s", workflow_id, "approve", "NotAwaitingApproval")

    log = printed.getvalue()
    assert not any(char in log for char in "\x1b\r")
    assert not any(line.startswith("18:00:00") for line in log.splitlines())
    assert (
        rf"Failed activation on workflow Evil\x1b[2J\nType with ID order-1{FORGED_LINE_SHOWN}"
        " and run ID r-1"
    ) in log
    # The traceback stays, for the bug it shows, with its exception's message on one line.
    assert "Traceback (most recent call last):" in log
    assert f"RuntimeError: cannot read order-1{FORGED_LINE_SHOWN}\n" in log
    assert log.splitlines()[-1].endswith(
        f"Order order-1{FORGED_LINE_SHOWN}: refused approve: NotAwaitingApproval"
    )


def test_an_activity_failure_of_an_order_someone_else_named_is_one_escaped_line(
    worker_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, printed = worker_log
    logger.addFilter(ExpectedFailuresOnOneLine())
    activity_info = {"workflow_id": f"order-2{FORGED_LINE}", "activity_type": "reserve_inventory"}
    try:
        raise ServiceUnavailableError("inventory service is down (attempt 1 of 4)")
    except ServiceUnavailableError:
        # As the SDK reports a failed attempt, naming its workflow in `temporal_activity`.
        logger.exception(
            "Completing activity as failed",
            extra={"temporal_activity": activity_info | {"attempt": 1}},
        )

    (line,) = printed.getvalue().splitlines()
    assert line.endswith(
        f"Order order-2{FORGED_LINE_SHOWN}: reserve_inventory failed (attempt 1):"
        " inventory service is down (attempt 1 of 4)"
    )
