"""Every `warehouse-stock` command fails the way an operator can read (issue 23): one line on
stderr, a non-zero exit status, never a traceback, with PostgreSQL (and Redis and Kafka) down and
with a bad setting; `--debug` shows the traceback."""

from __future__ import annotations

import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from cli.main import build_parser
from tests.e2e.support import PROJECT_ROOT, free_port

pytestmark = pytest.mark.integration

CLI = str(PROJECT_ROOT / ".venv" / "bin" / "warehouse-stock")
# The arguments each command is tried with; a command added later without an entry here is tried
# with none (a usage error, which must be one line too).
ARGS: dict[str, list[list[str]]] = {
    "migrate": [[], ["status"]],
    "replay": [["--reason", "conflict"]],
    "dead-letters": [
        ["list", "--unresolved"],
        ["show", "1"],
        ["resolve", "--reason", "conflict", "--note", "test"],
        ["replay", "--reason", "insufficient_stock"],
    ],
    "reconcile": [[], ["--json"]],
    "retention": [["--dry-run"]],
    "redrive": [["--queue-url", "http://127.0.0.1:{port}/123456789012/failures"]],
    "product": [[str(uuid.uuid4())]],
    "warehouses": [[]],
    "search": [["WH-1"]],
    "export": [["movements"]],
    "demo": [[]],
}


def invocations() -> list[list[str]]:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices  # noqa: SLF001
    assert commands is not None
    return [[name, *args] for name in commands for args in ARGS.get(name, [[]])]


def base_env(tmp_path: Path) -> dict[str, str]:
    """No .env of the checkout (the CLI runs in a bare directory), AWS answering nothing."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DB_", "KAFKA_", "OPERATOR_", "WEBHOOK_"))
    }
    return env | {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_MAX_ATTEMPTS": "1",
        "HOME": str(tmp_path),
    }


def down_env(tmp_path: Path) -> dict[str, str]:
    closed = free_port()
    return base_env(tmp_path) | {
        "DATABASE_URL": f"postgresql://warehouse:warehouse@127.0.0.1:{closed}/warehouse",
        "REDIS_URL": f"redis://127.0.0.1:{closed}/0",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{closed}",
        "DB_POOL_TIMEOUT_SECONDS": "1",
    }


def bad_env(tmp_path: Path) -> dict[str, str]:
    return down_env(tmp_path) | {"CACHE_ENABLED": "ture"}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    port = env["DATABASE_URL"].rsplit(":", 1)[1].split("/")[0]
    argv = [a.replace("{port}", port) for a in argv]
    return subprocess.run(
        [CLI, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("make_env", [down_env, bad_env], ids=["services_down", "bad_setting"])
def test_every_command_fails_in_one_line_without_a_traceback(make_env, tmp_path: Path) -> None:
    env = make_env(tmp_path)
    failures = []
    argvs = invocations()
    with ThreadPoolExecutor(max_workers=4) as pool:  # each mostly waits on a refused connection
        results = list(pool.map(lambda argv: run(argv, env, tmp_path), argvs))
    for argv, done in zip(argvs, results, strict=True):
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        ok = done.returncode != 0 and len(lines) == 1 and "Traceback" not in done.stderr + done.stdout
        if make_env is bad_env and ok and "CACHE_ENABLED" not in lines[0] and argv[0] in ARGS:
            ok = False  # the line names the bad setting
        if not ok:
            failures.append(f"{' '.join(argv)}: exit {done.returncode}, stderr {done.stderr!r}")
    assert not failures, "\n".join(failures)


def test_debug_shows_the_traceback_and_a_usage_error_is_one_line(tmp_path: Path) -> None:
    env = down_env(tmp_path)
    debug = run(["--debug", "migrate", "status"], env, tmp_path)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
    assert (
        debug.stderr.strip().splitlines()[-1].startswith("warehouse-stock migrate: cannot reach PostgreSQL")
    )
    usage = run(["dead-letters", "resolve", "--reason", "nonsense"], env, tmp_path)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1, usage.stderr
