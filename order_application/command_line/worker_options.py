"""worker.py's options: what to run, where to serve the codec (for whom) and metrics, the banner."""

import argparse

from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.converter import PayloadCodec
from temporalio.worker import WorkerDeploymentConfig

from deploys.releases import CURRENT_RELEASE, RELEASES
from local.errors import UserError
from payloads.codec import EncryptionCodec
from payloads.codec_auth import (
    AnyLocalUser,
    Approvers,
    Authorizer,
    OidcTokens,
    OidcUsers,
    StaticToken,
)
from payloads.codec_server import DEFAULT_PORT
from payloads.decision_proof import Tickets


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535 (got {text!r})")
    return int(text)


def metrics_address(text: str) -> str:
    """PORT (on localhost) or HOST:PORT, as the address to serve metrics on."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"must be PORT or HOST:PORT, port 1 to 65535 (got {text!r})"
        )
    return f"{host or '127.0.0.1'}:{port}"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--inventory-down",
        action="store_true",
        help="every inventory call from this worker fails until it restarts without the flag",
    )
    deploy = parser.add_mutually_exclusive_group()
    deploy.add_argument(
        "--release",
        choices=RELEASES,
        default=CURRENT_RELEASE,
        help="the release of OrderWorkflow to run: 1 (before the fraud re-check), 2 (with it,"
        " patched: the default) or 2-unpatched (with it, unpatched)",
    )
    deploy.add_argument(
        "--workflow-bug",
        action="store_true",
        help="run a deploy of OrderWorkflow with a bug after the approval",
    )
    parser.add_argument(
        "--deployment",
        metavar="NAME",
        help="poll as a version of this Worker Deployment (with --build-id): each order is"
        " pinned to the version it started on",
    )
    parser.add_argument("--build-id", metavar="ID", help="this worker's build, with --deployment")
    parser.add_argument(
        "--codec-port",
        metavar="PORT",
        type=port_number,
        default=DEFAULT_PORT,
        help="serve the codec that decrypts orders for the Web UI and the Temporal CLI on"
        " localhost:PORT (default %(default)s; 0: off)",
    )
    auth = parser.add_argument_group("who may decrypt through the codec server")
    auth.add_argument(
        "--codec-auth",
        choices=("none", "token", "oidc"),
        default="none",
        help="none: anyone on this machine (the default, so the dev server's Web UI decrypts);"
        " token: holders of the token in codec.token beside the key file, made on first use;"
        " oidc: the users of --codec-allow, by the access token the Web UI passes",
    )
    auth.add_argument("--oidc-issuer", metavar="URL", help="with oidc: the tokens' issuer (iss)")
    auth.add_argument("--oidc-audience", metavar="AUD", help="with oidc: the tokens' audience")
    auth.add_argument(
        "--oidc-jwks-url",
        metavar="URL",
        help="with oidc: the issuer's signing keys (default: from its discovery document)",
    )
    auth.add_argument(
        "--oidc-claim",
        metavar="NAME",
        default="email",
        help="with oidc: the claim that names the user (default %(default)s)",
    )
    auth.add_argument(
        "--codec-allow",
        metavar="NAME",
        action="append",
        default=[],
        help="with oidc: a user who may decrypt, by that claim (repeat for each)",
    )
    approvals = parser.add_argument_group("who may decide")
    approvals.add_argument(
        "--approvers",
        choices=("key", "oidc"),
        default="key",
        help="key: anyone, each decision recorded as proven by the order key or as a name given"
        " (the default); oidc: the users of --approver only, signed in with the --oidc-* issuer,"
        " through tickets from the codec server",
    )
    approvals.add_argument(
        "--approver",
        metavar="NAME",
        action="append",
        default=[],
        help="with --approvers oidc: a user who may approve or reject, by --oidc-claim (repeat)",
    )
    parser.add_argument(
        "--metrics-port",
        metavar="[HOST:]PORT",
        type=metrics_address,
        help="serve Prometheus metrics, the SDK's and the orders', at http://localhost:PORT/metrics"
        " (HOST:PORT to listen elsewhere, such as 0.0.0.0:PORT for a Prometheus on another host)",
    )
    role = parser.add_mutually_exclusive_group()
    role.add_argument("--workflows-only", action="store_true", help="run no activities")
    role.add_argument("--activities-only", action="store_true", help="run no workflows")
    args = parser.parse_args()
    if (args.deployment is None) != (args.build_id is None):
        parser.error("--deployment and --build-id go together")
    uses_oidc = args.codec_auth == "oidc" or args.approvers == "oidc"
    if uses_oidc and not (args.oidc_issuer and args.oidc_audience):
        parser.error("oidc needs --oidc-issuer and --oidc-audience")
    if args.codec_auth == "oidc" and not args.codec_allow:
        parser.error("--codec-auth oidc needs --codec-allow for each user who may decrypt")
    if args.codec_auth != "oidc" and args.codec_allow:
        parser.error("--codec-allow goes with --codec-auth oidc")
    if args.approvers == "oidc" and not args.approver:
        parser.error("--approvers oidc needs --approver for each user who may decide")
    if args.approvers == "oidc" and args.codec_port == 0:
        parser.error("--approvers oidc needs the codec server, which gives out the tickets")
    if args.approvers != "oidc" and args.approver:
        parser.error("--approver goes with --approvers oidc")
    if not uses_oidc and any((args.oidc_issuer, args.oidc_audience, args.oidc_jwks_url)):
        parser.error("--oidc-* go with --codec-auth oidc or --approvers oidc")
    return args


def _oidc_tokens(args: argparse.Namespace) -> OidcTokens:
    return OidcTokens(args.oidc_issuer, args.oidc_audience, args.oidc_claim, args.oidc_jwks_url)


def codec_authorizer(args: argparse.Namespace, codec: PayloadCodec | None) -> Authorizer:
    """Who may decrypt through the codec server, as --codec-auth says."""
    if args.codec_auth == "token" and isinstance(codec, EncryptionCodec) and codec.key_file:
        return StaticToken.beside(codec.key_file)
    if args.codec_auth == "oidc":
        return OidcUsers(_oidc_tokens(args), frozenset(args.codec_allow))
    return AnyLocalUser()


def approvers(args: argparse.Namespace, codec: PayloadCodec | None) -> Approvers | None:
    """Who may have a ticket from the codec server, with --approvers oidc; None otherwise."""
    if args.approvers != "oidc":
        return None
    if not (isinstance(codec, EncryptionCodec) and codec.key_file):
        raise UserError("--approvers oidc needs encryption on, with a key file")
    return Approvers(_oidc_tokens(args), frozenset(args.approver), Tickets.beside(codec.key_file))


def banner(args: argparse.Namespace, task_queue: str, address: str) -> str:
    """The line that says the worker runs: where, what, and which demo switches are on."""
    roles = " and ".join(
        role
        for role, on in (
            ("workflows", not args.activities_only),
            ("activities", not args.workflows_only),
        )
        if on
    )
    switches = "".join(
        f"; {switch}"
        for switch, on in (
            ("INVENTORY DOWN", args.inventory_down),
            ("WORKFLOW BUG", args.workflow_bug),
            (f"RELEASE {args.release}", args.release != CURRENT_RELEASE),
            (f"DEPLOYMENT {args.deployment} BUILD {args.build_id}", args.deployment is not None),
        )
        if on
    )
    return (
        f"Worker polling task queue {task_queue!r} on {address} ({roles}{switches})."
        " Ctrl-C to stop."
    )


def deployment_config(name: str | None, build_id: str | None) -> WorkerDeploymentConfig | None:
    """Versioned polling for `--deployment NAME --build-id ID`; None polls unversioned."""
    if name is None or build_id is None:
        return None
    # Every order is pinned: it finishes on the build it started on, whatever is current since.
    # The worker says so, not the workflow's definition: the server refuses a workflow that
    # declares a behaviour from a worker that polls unversioned, as the quick start's does.
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(deployment_name=name, build_id=build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )
