"""The data directory is this user's alone: one that another user owns or that group or others
may open, or a link planted in it, is refused in one line before anything is written there."""

import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.scripts import assert_one_line_error

from harness.processes import DevServer, run_script, script_env
from local.errors import UserError
from payloads.codec import key_file
from shop.services import Ledger


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An empty data directory of this user's, as the scripts make it."""
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def planted_by_nobody() -> Iterator[Path]:
    """An empty directory that the user `nobody` made, as another user would plant one."""
    if os.getuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("making a directory as another user takes root and runuser")
    made = subprocess.run(
        ["runuser", "-u", "nobody", "--", "mktemp", "-d", "-t", "order-data.XXXXXX"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    path = Path(made.stdout.strip())
    yield path
    shutil.rmtree(path)


def record_one_charge(ledger_file: Path) -> None:
    ledger = Ledger(ledger_file)
    ledger.record("o-1/charge", "o-1", "charge", "txn-1")
    ledger.close()


# 777: planted for the victim; 775: made under umask 002; 755: the .data of older versions.
@pytest.mark.parametrize("mode", [0o777, 0o775, 0o755], ids=oct)
def test_a_data_dir_open_to_group_or_others_is_refused_with_the_chmod_to_run(
    data: Path, mode: int
) -> None:
    data.chmod(mode)
    with pytest.raises(UserError) as refused:
        Ledger(data / "ledger.sqlite3")
    assert str(refused.value) == (
        f"{data} is open to group or others (mode {mode:o}): run chmod 700 {data}"
    )
    assert list(data.iterdir()) == []


def test_a_data_dir_of_another_user_is_refused(planted_by_nobody: Path) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    with pytest.raises(UserError) as refused:
        Ledger(planted_by_nobody / "ledger.sqlite3")
    assert str(refused.value) == (
        f"{planted_by_nobody} belongs to another user (uid {nobody}): use a directory of yours"
    )
    assert list(planted_by_nobody.iterdir()) == []


def test_an_existing_key_file_in_a_data_dir_open_to_others_is_refused(data: Path) -> None:
    key_file(data)  # Made on first use, as a script would.
    data.chmod(0o775)
    with pytest.raises(UserError, match=f"run chmod 700 {data}$"):
        key_file(data)


def test_a_ledger_planted_as_a_link_is_refused_and_its_target_never_made(
    data: Path, tmp_path: Path
) -> None:
    chosen = tmp_path / "chosen-by-another-user"
    (data / "ledger.sqlite3").symlink_to(chosen)
    with pytest.raises(UserError) as refused:
        Ledger(data / "ledger.sqlite3")
    link = data / "ledger.sqlite3"
    assert str(refused.value) == (
        f"{link} is a symbolic link, which the scripts do not follow: run rm {link}"
    )
    assert not chosen.exists()
    assert link.is_symlink()


def test_a_fresh_data_dir_is_made_this_users_only_and_used_again(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    record_one_charge(data / "ledger.sqlite3")
    record_one_charge(data / "ledger.sqlite3")  # The directory exists now: checked and accepted.
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert key_file(data).is_file()
    ledger = Ledger(data / "ledger.sqlite3")
    (charge,) = ledger.effects()
    ledger.close()
    assert charge.requests == 2


@pytest.mark.e2e
def test_ledger_py_reads_a_data_dir_of_this_users_own(data: Path) -> None:
    record_one_charge(data / "ledger.sqlite3")
    result = run_script("ledger.py", env=script_env(DevServer(), data))
    assert result.returncode == 0, result
    assert result.stdout.startswith("o-1: 1 charge\n")


@pytest.mark.e2e
def test_ledger_py_refuses_a_data_dir_others_may_write_in_one_line(data: Path) -> None:
    record_one_charge(data / "ledger.sqlite3")
    data.chmod(0o777)
    result = run_script("ledger.py", env=script_env(DevServer(), data))
    assert_one_line_error(result, f"{data} is open to group or others (mode 777): run chmod 700")
    assert result.stdout == ""
