"""`make bench`'s options (BENCH_ARGS) as docs/performance.md documents them, and its row families.

Only the command line and the registry: the rows themselves need the whole stack and minutes, and
speed is never asserted in a test (make bench prints it).
"""

from __future__ import annotations

import pytest

from tools.bench import run


def test_only_picks_families_and_http_means_webhook_and_reads() -> None:
    cfg = run.parse_args(["--only", "ingest,http", "--runs", "1", "--http-workers", "1"])
    assert cfg.only == {"ingest", "webhook", "reads"}
    assert (cfg.runs, cfg.http_workers) == (1, 1)


def test_every_family_by_default_and_soak_adds_the_kafka_rows() -> None:
    assert run.parse_args([]).only == set(run.FAMILIES)
    assert run.parse_args(["--only", "cold", "--soak"]).only == {"cold", "kafka"}


def test_an_unknown_family_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run.parse_args(["--only", "ingest,nonsense"])
    assert "nonsense" in capsys.readouterr().err


def test_every_registered_family_has_a_run_function() -> None:
    for name in run.FAMILIES:
        assert callable(run.family(name).run), name


def test_only_loopback_is_benchmarked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_DATABASE_URL", "postgresql://warehouse:warehouse@10.1.2.3:5432/bench")
    with pytest.raises(SystemExit, match="non-loopback"):
        run.parse_args([])
