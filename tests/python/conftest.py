"""Shared fixtures for motedb's python validation tests.

Run with the project venv's python (it carries rclpy and the readers):
    cargo build --bin motedb
    <venv>/bin/python -m pytest tests/python
MOTEDB_BIN overrides the binary (default: target/debug/motedb, then release).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _find_bin() -> Path:
    env = os.environ.get("MOTEDB_BIN")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "motedb"
        if p.exists():
            return p
    raise RuntimeError("motedb binary not found: run `cargo build --bin motedb` or set MOTEDB_BIN")


@pytest.fixture(scope="session")
def motedb_bin() -> Path:
    return _find_bin()


@pytest.fixture(scope="session")
def ament_prefix() -> Path:
    """The venv is itself an ament prefix (share/<pkg>/msg/*.msg)."""
    prefix = Path(sys.prefix)
    assert (prefix / "share" / "std_msgs" / "msg" / "String.msg").exists(), (
        "run these tests with the venv python that has ros-jazzy-* message wheels"
    )
    return prefix


def run_motedb(binary: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(binary), *map(str, args)], capture_output=True, text=True, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"motedb {' '.join(map(str, args))} exited {proc.returncode}\n{proc.stderr}"
        )
    return proc
