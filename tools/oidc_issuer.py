"""A local OpenID Connect issuer, to try the codec server's `--codec-auth oidc` on one machine.

    uv run python tools/oidc_issuer.py [--user grace@example.com] [--minutes 60]

It prints the worker's command for this issuer and an access token for the user, then serves the
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
        "--user", default="grace@example.com", help="whom the token names (default %(default)s)"
    )
    parser.add_argument(
        "--minutes", type=float, default=60, help="how long the token lasts (default %(default)s)"
    )
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be positive")

    with local_issuer() as issuer:
        print(f"OIDC issuer on {issuer.url}; Ctrl-C stops it. Start the worker with:")
        print(
            f"  ./order_application/worker.py --codec-auth oidc --oidc-issuer {issuer.url}"
            f" --oidc-audience {AUDIENCE} --codec-allow {shlex.quote(args.user)}"
        )
        print(f"An access token for {args.user}, for {args.minutes:g} minutes:")
        print(f"  TOKEN={issuer.token(args.user, expires_in=args.minutes * 60)}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            # Ctrl-C may come twice, from the terminal and from uv: the first one stops it.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            print("Issuer stopped: its tokens can no longer be checked.")


if __name__ == "__main__":
    main()
