"""Locked installs: each script's lockfile is current, and scripts and tests use one set of pins."""

# A uv script runs with the exact versions in the `<script>.py.lock` next to it. If a lock is
# stale, or a script pins another version than the tests run with, these fail.

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from harness.processes import REPO, SCRIPTS

# PEP 723's inline script metadata: `# /// script` ... `# ///`.
METADATA = re.compile(r"^# /// script$\s(?P<content>(^#(| .*)$\s)+)^# ///$", re.MULTILINE)

# The sample's scripts, and the benchmark's floor for starter.py (benchmarks/floor_starter.py).
SCRIPT_FILES = sorted(
    path
    for folder in (SCRIPTS, REPO / "benchmarks")
    for path in folder.glob("*.py")
    if METADATA.search(path.read_text())
)


def script_metadata(script: Path) -> dict[str, object]:
    found = METADATA.search(script.read_text())
    assert found is not None
    lines = found.group("content").splitlines()
    return tomllib.loads("\n".join(line.removeprefix("#").removeprefix(" ") for line in lines))


def dev_pins() -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return dict(pin.split("==") for pin in pyproject["dependency-groups"]["dev"])


def locked_versions(lockfile: Path) -> dict[str, str]:
    lock = tomllib.loads(lockfile.read_text())
    return {package["name"]: package["version"] for package in lock.get("package", [])}


def test_every_script_with_dependencies_is_found() -> None:
    assert {path.name for path in SCRIPT_FILES} >= {"worker.py", "starter.py", "approve.py"}


@pytest.mark.parametrize("script", SCRIPT_FILES, ids=lambda path: path.name)
def test_script_pins_are_the_dev_groups(script: Path) -> None:
    pins = dev_pins()
    dependencies = script_metadata(script)["dependencies"]
    assert isinstance(dependencies, list)
    for dependency in dependencies:
        name, _, version = dependency.partition("==")
        assert version, f"{script.name}: {dependency} is not pinned exactly"
        assert pins.get(name) == version, (
            f"{script.name} pins {dependency}; pyproject.toml's dev group: {name}=={pins.get(name)}"
        )


@pytest.mark.e2e
@pytest.mark.parametrize("script", SCRIPT_FILES, ids=lambda path: path.name)
def test_script_lock_is_current_and_agrees_with_the_tests_lock(script: Path) -> None:
    lockfile = script.with_name(f"{script.name}.lock")
    assert lockfile.exists(), f"no {lockfile.name}: run uv lock --script {script.name}"
    checked = subprocess.run(
        ["uv", "lock", "--script", str(script), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, f"{lockfile.name} is stale:\n{checked.stderr}"
    tests_lock = locked_versions(REPO / "uv.lock")
    for name, version in locked_versions(lockfile).items():
        assert tests_lock.get(name) == version, (
            f"{lockfile.name} locks {name} {version}, uv.lock {tests_lock.get(name)}"
        )
