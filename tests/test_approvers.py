"""The secured mode, `worker.py --approvers oidc`: only signed-in approvers decide, proven by a
ticket the worker's codec server gives for their access token; who placed an order may not
approve it; a plain decision from the CLI, and a decision signal, take no effect."""

import base64
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support.issuer import AUDIENCE, Issuer, local_issuer
from support.scripts import VALID_CARD, assert_one_line_error, new_order_id
from support.temporal_cli import temporal

from harness.processes import (
    DevServer,
    Worker,
    eventually,
    run_script,
    running_worker,
    script_env,
    status_saying,
)

pytestmark = pytest.mark.e2e

GRACE, HEIDI, MALLORY = "grace@example.com", "heidi@example.com", "mallory@example.com"


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    with local_issuer() as running:
        yield running


@pytest.fixture(scope="module")
def secured(
    e2e_server: DevServer, issuer: Issuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Worker]]:
    """A worker that takes decisions from GRACE and HEIDI only, and the scripts' environment."""
    env = script_env(
        e2e_server, tmp_path_factory.mktemp("data"), ORDER_TASK_QUEUE=f"sec-{uuid.uuid4().hex[:6]}"
    )
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with running_worker(
        env, log, "--approvers", "oidc", "--oidc-issuer", issuer.url, "--oidc-audience", AUDIENCE,
        "--approver", GRACE, "--approver", HEIDI, codec=True,
    ) as worker:  # fmt: skip
        env["ORDER_CODEC_ENDPOINT"] = f"http://localhost:{worker.codec_port}"
        yield env, worker


def token_file(tmp_path: Path, token: str) -> str:
    path = tmp_path / f"token-{uuid.uuid4().hex[:6]}"
    path.write_text(token + "\n")
    return str(path)


async def waiting(env: dict[str, str], *options: str) -> str:
    order_id = new_order_id()
    placed = run_script(
        "starter.py", VALID_CARD, "--order-id", order_id, "--no-wait",
        "--approval-timeout", "600", *options, env=env,
    )  # fmt: skip
    assert placed.returncode == 0, placed
    await eventually(status_saying(env, order_id, "awaiting approval"), "awaiting approval")
    return order_id


async def test_a_signed_in_approver_is_recorded_as_signed_in(
    e2e_server: DevServer,
    secured: tuple[dict[str, str], Worker],
    issuer: Issuer,
    tmp_path: Path,
) -> None:
    env, worker = secured
    order_id = await waiting(env)
    token = issuer.token(GRACE)
    approved = run_script(
        "approve.py", order_id, "checked", "--token-file", token_file(tmp_path, token), env=env
    )
    assert approved.returncode == 0, approved
    assert re.fullmatch(
        rf"Approved order {order_id} by {GRACE} \(signed in\) at \d\d:\d\d:\d\d UTC: checked\n",
        approved.stdout,
    ), approved
    status = await eventually(status_saying(env, order_id, "delivered"), "delivered")
    assert f"approved by {GRACE} (signed in) at " in status
    # The history, decrypted, keeps the user and the ticket, never the access token.
    shown = temporal(
        e2e_server, worker.codec_port, "workflow", "show", "-w", order_id, "-o", "json"
    ).stdout
    data = "".join(
        base64.b64decode(field).decode(errors="replace")
        for field in re.findall(r'"data": "([^"]*)"', shown)
    )
    assert f'"by":"{GRACE}","reason":"checked","proof":"signed-in:' in data
    assert token.split(".")[2] not in shown + data


def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize(
    "case",
    ["no token", "expired", "wrong audience", "wrong issuer", "wrong key", "not allowed"],
)
async def test_a_decision_without_a_valid_sign_in_is_refused_and_nothing_recorded(
    secured: tuple[dict[str, str], Worker], issuer: Issuer, tmp_path: Path, case: str
) -> None:
    env, _ = secured
    order_id = await waiting(env)
    tokens = {
        "expired": issuer.token(GRACE, expires_in=-120),
        "wrong audience": issuer.token(GRACE, audience="another-app"),
        "wrong issuer": issuer.token(GRACE, issuer="http://127.0.0.1:9/elsewhere"),
        "wrong key": issuer.token(GRACE, key=other_key()),
        "not allowed": issuer.token(MALLORY),
    }
    token = ["--token-file", token_file(tmp_path, tokens[case])] if case in tokens else []
    refused = run_script("approve.py", order_id, *token, env=env)
    expected = {
        "no token": f"order {order_id} refused the approval: order {order_id} takes decisions"
        " from signed-in approvers only: sign in (approve.py --token-file, or the inbox)",
        "not allowed": f"the sign-in was refused (403): {MALLORY} may not approve or reject orders",
    }.get(case, "the sign-in was refused (401): the access token is not valid")
    assert_one_line_error(refused, expected)
    status = run_script("status.py", order_id, env=env).stdout
    assert "approval:      pending" in status, status


async def test_a_plain_decision_from_the_cli_is_refused(
    e2e_server: DevServer, secured: tuple[dict[str, str], Worker]
) -> None:
    env, worker = secured
    order_id = await waiting(env)
    sent = temporal(
        e2e_server, worker.codec_port, "workflow", "update", "execute", "-w", order_id,
        "--name", "approve", "-i", f'{{"by": "{GRACE}"}}',
    )  # fmt: skip
    assert sent.returncode == 1, sent
    assert "takes decisions from signed-in approvers only" in sent.stderr, sent
    assert "approval:      pending" in run_script("status.py", order_id, env=env).stdout


async def test_a_decision_signal_is_ignored_with_one_log_line(
    e2e_server: DevServer, secured: tuple[dict[str, str], Worker]
) -> None:
    env, worker = secured
    order_id = await waiting(env)
    sent = temporal(
        e2e_server, worker.codec_port, "workflow", "signal", "-w", order_id,
        "--name", "approve_order", "-i", f'{{"by": "{GRACE}"}}',
    )  # fmt: skip
    assert sent.returncode == 0, sent
    line = f"Order {order_id}: ignored approve_order signal: decisions here need a sign-in"
    await eventually(lambda: line in worker.output(), "the worker's line")
    assert worker.output().count(line) == 1
    assert "approval:      pending" in run_script("status.py", order_id, env=env).stdout


async def test_who_placed_the_order_may_not_approve_it(
    secured: tuple[dict[str, str], Worker], issuer: Issuer, tmp_path: Path
) -> None:
    env, _ = secured
    grace = token_file(tmp_path, issuer.token(GRACE))
    order_id = await waiting(env, "--token-file", grace)
    own = run_script("approve.py", order_id, "--token-file", grace, env=env)
    assert_one_line_error(
        own,
        f"order {order_id} refused the approval: order {order_id} was placed by {GRACE}, who may"
        " not approve it too",
    )
    heidi = token_file(tmp_path, issuer.token(HEIDI))
    approved = run_script("approve.py", order_id, "--token-file", heidi, env=env)
    assert approved.returncode == 0, approved
    assert f"by {HEIDI} (signed in)" in approved.stdout
