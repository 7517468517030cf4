"""`make test` runs the fault suite in its short form: its own stack, four faults, exact stock.

The driver is a subprocess (as `make chaos` runs it), so a crash, a hang or a leak of its services
shows up here as a failure with its report, never as a stuck test session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1200  # the driver's own budget is 900 s; this only catches a driver that ignores it


def _missing_prerequisites() -> list[str]:
    missing = [tool for tool in ("java", "redis-server", "runuser") if shutil.which(tool) is None]
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        missing.append("PostgreSQL server binaries")
    if os.geteuid() != 0:
        missing.append("root (PostgreSQL runs as the postgres user)")
    return missing


def test_short_fault_suite_passes() -> None:
    missing = _missing_prerequisites()
    if missing:
        pytest.skip(f"the fault suite needs {', '.join(missing)}")
    done = subprocess.run(
        [sys.executable, "-m", "tools.chaos.run", "--short"],
        cwd=ROOT,
        env=dict(os.environ),  # the driver sets every service address its children use itself
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    report = done.stdout + done.stderr
    print(report)  # shown by pytest with -rA or on failure: the per-fault numbers
    assert done.returncode == 0, report[-6000:]
    for phase in ("baseline", "poller kill -9", "postgres restart", "redis stop", "kafka restart"):
        assert f"[chaos] {phase}" in report, f"phase {phase!r} missing from the report"
    assert "stock FAIL" not in report
    assert "[chaos] PASS:" in report
