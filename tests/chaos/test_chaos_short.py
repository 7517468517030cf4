"""`make test` runs the fault suite in its short form: its own stack, six faults (two of them
combined), exact stock and balanced books after each.

The driver is a subprocess (as `make chaos` runs it), so a crash, a hang or a leak of its services
shows up here as a failure with its report, never as a stuck test session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1200  # the driver's own budget is 900 s; this only catches a driver that ignores it
PHASES = (
    "baseline",
    "poller kill -9",
    "postgres restart",
    "redis stop",
    "kafka restart",
    "postgres+redis down",
    "kafka restart while postgres down",
)


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
    for phase in PHASES:
        # The phase's own line: its name (a duration after "redis stop"), then the counts.
        line = re.search(rf"^\[chaos\] {re.escape(phase)}(?: \d+s)? +sent .*$", report, re.MULTILINE)
        assert line, f"phase {phase!r} missing from the report"
        assert "stock OK" in line[0] and "books OK" in line[0] and line[0].endswith("PASS"), line[0]
    assert "[chaos] PASS: 7 phases" in report
