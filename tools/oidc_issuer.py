"""A local OpenID Connect issuer, to try `worker.py --codec-auth oidc` or `--approvers oidc` on one
machine.

    uv run python tools/oidc_issuer.py [--user grace@example.com ...] [--minutes 60]

It prints the worker's commands for this issuer and a token file per user, then serves the
issuer's discovery document and keys on localhost until Ctrl-C. It is the tests' own issuer
(tests/support/issuer.py), with a key made per launch: for trying the mode, never for sign-in.
"""

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

# The issuer lives with the tests, which use it the same way.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.issuer import AUDIENCE, local_issuer


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Serves a local OIDC issuer and prints a worker command and a token for it."
    )
    parser.add_argument(
        "--user",
        action="append",
        help="whom a token names (repeat for each; default grace@example.com)",
    )
    parser.add_argument(
        "--minutes", type=float, default=60, help="how long the token lasts (default %(default)s)"
    )
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be positive")

    users = args.user or ["grace@example.com"]
    with local_issuer() as issuer:
        # Whom its sign-in page signs in, for `inbox.py --sign-in oidc`: it asks nobody.
        issuer.signing_in_as = users[0]
        oidc = f"--oidc-issuer {issuer.url} --oidc-audience {AUDIENCE}"
        print(f"OIDC issuer on {issuer.url}; Ctrl-C stops it. Start the worker with one of:")
        allow = " ".join(f"--codec-allow {shlex.quote(user)}" for user in users)
        print(f"  ./order_application/worker.py --codec-auth oidc {oidc} {allow}")
        approvers = " ".join(f"--approver {shlex.quote(user)}" for user in users)
        print(f"  ./order_application/worker.py --approvers oidc {oidc} {approvers}")
        print(f"Access tokens, for {args.minutes:g} minutes, in files of this folder (0600):")
        for user in users:
            path = Path(f"{user.partition('@')[0]}.token")
            path.touch(mode=0o600)
            path.chmod(0o600)  # Also a file that was there before: a token is a secret.
            path.write_text(issuer.token(user, expires_in=args.minutes * 60) + "\n")
            print(f"  {user}: {path}  (TOKEN=$(cat {path}))", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            # Ctrl-C may come twice, from the terminal and from uv: the first one stops it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("Issuer stopped: its tokens can no longer be checked.")


if __name__ == "__main__":
    main()
