"""Pointing the scripts at a server as docs/your-own-server.md does, against a local dev server: a
profile in a TOML file, TEMPORAL_NAMESPACE, an API key and TLS."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
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

PROFILE = "shop"


@pytest.fixture(scope="module")
def namespace(e2e_server: DevServer) -> str:
    """A namespace other than `default`, with the order's search attributes registered in it as
    the page says to on a server the worker did not start."""
    name = f"shop-{uuid.uuid4().hex[:6]}"
    created = temporal(e2e_server, None, "operator", "namespace", "create", "-n", name)
    assert created.returncode == 0, created
    registered = temporal(
        e2e_server, None, "operator", "search-attribute", "create", "--namespace", name,
        "--name", "OrderStep", "--type", "Keyword", "--name", "OrderTotalCents", "--type", "Int",
    )  # fmt: skip
    assert registered.returncode == 0, registered
    return name


@pytest.fixture(scope="module")
def profile_env(
    e2e_server: DevServer, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The scripts' environment with no TEMPORAL_ADDRESS: the server and the namespace come from
    a profile in a config file, selected by TEMPORAL_PROFILE."""
    data_dir = tmp_path_factory.mktemp("profile")
    config = data_dir / "temporal.toml"
    config.write_text(
        f'[profile.{PROFILE}]\naddress = "{e2e_server.address}"\nnamespace = "{namespace}"\n'
    )
    env = script_env(
        e2e_server,
        data_dir,
        ORDER_TASK_QUEUE=f"profile-{uuid.uuid4().hex[:6]}",
        TEMPORAL_CONFIG_FILE=str(config),
        TEMPORAL_PROFILE=PROFILE,
    )
    del env["TEMPORAL_ADDRESS"]
    return env


@pytest.fixture(scope="module")
def profile_worker(
    profile_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    # A worker that found no server configured would start one on the default port: make sure
    # the profile names this one first.
    unknown = run_script("status.py", "no-such-order", env=profile_env)
    assert_one_line_error(unknown, "no order with ID no-such-order")
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    with running_worker(profile_env, log) as running:
        yield running


async def test_a_profile_in_a_config_file_runs_an_order_in_its_namespace(
    e2e_server: DevServer,
    namespace: str,
    profile_env: dict[str, str],
    profile_worker: Worker,
    tmp_path: Path,
) -> None:
    assert f"on {e2e_server.address} (workflows and activities)" in profile_worker.output()
    order_id = new_order_id()
    placed = run_script(
        "starter.py", VALID_CARD, "--order-id", order_id, "--no-wait", env=profile_env
    )
    assert placed.returncode == 0, placed
    assert f"/namespaces/{namespace}/workflows/{order_id}\n" in placed.stdout
    assert run_script("approve.py", order_id, env=profile_env).returncode == 0
    await eventually(
        status_saying(profile_env, order_id, f"Order {order_id} delivered."), "delivery"
    )
    # The order is in the profile's namespace, not in `default` on the same server.
    in_default = script_env(e2e_server, tmp_path)
    assert_one_line_error(
        run_script("status.py", order_id, env=in_default), f"no order with ID {order_id}"
    )


async def test_temporal_namespace_reaches_the_orders_of_that_namespace(
    e2e_server: DevServer,
    namespace: str,
    profile_env: dict[str, str],
    profile_worker: Worker,
) -> None:
    env = script_env(
        e2e_server,
        Path(profile_env["ORDER_DATA_DIR"]),  # The worker's key: the order is encrypted with it.
        ORDER_TASK_QUEUE=profile_env["ORDER_TASK_QUEUE"],
        TEMPORAL_NAMESPACE=namespace,
    )
    order_id = new_order_id()
    placed = run_script(
        "starter.py", VALID_CARD, "--approval-threshold", "100", "--order-id", order_id, env=env
    )
    assert placed.returncode == 0, placed
    assert f"Order {order_id} delivered." in placed.stdout
    assert f"/namespaces/{namespace}/workflows/{order_id}\n" in placed.stdout
    # The profile's worker delivered it: both ways of naming the namespace reach the same one.
    assert (
        f"Order {order_id} delivered." in run_script("status.py", order_id, env=profile_env).stdout
    )


def test_a_profile_missing_from_the_config_file_is_a_one_line_error(
    profile_env: dict[str, str],
) -> None:
    env = profile_env | {"TEMPORAL_PROFILE": "no-such-profile"}
    result = run_script("status.py", "some-order", env=env)
    assert_one_line_error(
        result, "cannot read the Temporal client configuration: Profile 'no-such-profile' not found"
    )


def test_an_api_key_turns_tls_on_which_a_plain_local_server_refuses_in_one_line(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    api_key = f"key-{uuid.uuid4().hex}"
    env = script_env(e2e_server, tmp_path, TEMPORAL_API_KEY=api_key)
    for script, args in (("status.py", ["some-order"]), ("starter.py", [VALID_CARD])):
        refused = run_script(script, *args, env=env)
        assert_one_line_error(
            refused, f"cannot reach Temporal at {e2e_server.address} (namespace default): "
        )
        # The key is a secret: never echoed.
        assert api_key not in refused.stdout + refused.stderr
    # With TLS turned off, the same key goes in clear to the server, which does not check it.
    plain = run_script("status.py", "some-order", env=env | {"TEMPORAL_TLS": "false"})
    assert_one_line_error(plain, "no order with ID some-order")


def test_tls_against_a_plain_server_is_a_one_line_error(
    e2e_server: DevServer, tmp_path: Path
) -> None:
    env = script_env(e2e_server, tmp_path, TEMPORAL_TLS="true")
    for script, args in (
        ("status.py", ["some-order"]),
        ("approve.py", ["some-order"]),
        ("worker.py", ["--codec-port", "0"]),
    ):
        refused = run_script(script, *args, env=env, timeout=60)
        assert_one_line_error(
            refused, f"cannot reach Temporal at {e2e_server.address} (namespace default): "
        )
