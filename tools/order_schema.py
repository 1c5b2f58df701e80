"""Writes docs/order.schema.json, the JSON Schema of an order, from the Order model.

    uv run python tools/order_schema.py

For clients in other languages: what OrderWorkflow takes, with every bound it checks.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "order_application"))

from shared import Order

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "docs" / "order.schema.json"


def order_schema() -> str:
    return json.dumps(Order.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    SCHEMA_FILE.parent.mkdir(exist_ok=True)
    SCHEMA_FILE.write_text(order_schema())
    print(f"wrote {SCHEMA_FILE}")
