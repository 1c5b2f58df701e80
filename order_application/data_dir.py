"""Where the sample keeps its local state: ORDER_DATA_DIR, or .data beside the scripts."""

import os
from pathlib import Path

DATA_DIR = Path(os.environ.get("ORDER_DATA_DIR", Path(__file__).resolve().parent / ".data"))
"""Local state (git-ignored): the ledger, the encryption keys, the dev server's database and log."""
