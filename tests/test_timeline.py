"""The inbox's timeline reads each activity's result by the type name the worker registers."""

from pathlib import Path

from activities import OrderActivities
from shop.services import Ledger, Services
from web.timeline import ACTIVITY_MOMENTS


def test_the_timeline_knows_every_activity_by_its_registered_name(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    registered = {activity.__name__ for activity in OrderActivities(Services(ledger)).all()}
    ledger.close()
    assert set(ACTIVITY_MOMENTS) == registered
