"""The fault suite's own PostgreSQL, Redis and Kafka, driven through infra/scripts/chaos.sh.

Spare ports on 127.0.0.1 and a state directory of its own: the shared services and `make run`'s
stack are never touched. Stopping and starting a service goes through the local stack's own
start functions, so the suite exercises the services the way developers run them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tools import procs

CHAOS_SH = procs.ROOT / "infra" / "scripts" / "chaos.sh"


class StackError(RuntimeError):
    """A stack command failed; the message carries its output."""


@dataclass
class ChaosStack:
    state_dir: Path
    topic: str = "chaos-movements"
    postgres_port: int = 0
    redis_port: int = 0
    kafka_port: int = 0
    kafka_controller_port: int = 0
    # A password nobody else uses, so the log check can look for it (set after `up`).
    db_password: str = field(default_factory=lambda: f"chaos-pw-{secrets.token_hex(8)}")
    started: bool = False

    def __post_init__(self) -> None:
        if not self.postgres_port:
            ports = procs.free_ports(4)
            self.postgres_port, self.redis_port, self.kafka_port, self.kafka_controller_port = ports

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def script_env(self) -> dict[str, str]:
        env = procs.base_env(
            STACK_DIR=str(self.state_dir),
            POSTGRES_PORT=str(self.postgres_port),
            REDIS_PORT=str(self.redis_port),
            KAFKA_PORT=str(self.kafka_port),
            KAFKA_CONTROLLER_PORT=str(self.kafka_controller_port),
            KAFKA_TOPIC=self.topic,
            KAFKA_HEAP_OPTS="-Xms128m -Xmx512m",
            KAFKA_START_TIMEOUT="150",
        )
        for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "DLQ_TOPIC"):
            env[name] = ""  # chaos.sh's own stack, whatever the environment or `.env` say
        return env

    def _script(self, *args: str, timeout: float) -> str:
        try:
            done = subprocess.run(
                ["bash", str(CHAOS_SH), *args],
                cwd=procs.ROOT,
                env=self.script_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"chaos.sh {' '.join(args)} took more than {timeout:.0f}s") from exc
        if done.returncode != 0:
            raise StackError(f"chaos.sh {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done.stderr

    # --- the app's view --------------------------------------------------------------------------

    @property
    def database_url(self) -> str:
        return f"postgresql://warehouse:{self.db_password}@127.0.0.1:{self.postgres_port}/warehouse"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    # --- lifecycle -------------------------------------------------------------------------------

    def up(self, timeout: float = 420) -> float:
        """Start all three and migrate; then give the app role a password of its own. Seconds taken."""
        began = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.started = True  # from here on, down() has something to clean
        self._script("stack-up", timeout=timeout)
        stock_url = f"postgresql://warehouse:warehouse@127.0.0.1:{self.postgres_port}/warehouse"
        with psycopg.connect(stock_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f"ALTER ROLE warehouse PASSWORD '{self.db_password}'")
        return time.monotonic() - began

    def down(self) -> None:
        """Stop everything this state dir started and drop its PostgreSQL cluster. Never raises."""
        if not self.started:
            return
        with contextlib.suppress(Exception):
            self._script("stack-down", timeout=180)
        self.started = False

    def stop_service(self, name: str) -> None:
        self._script("svc-stop", name, timeout=120)

    def start_service(self, name: str) -> None:
        self._script("svc-start", name, timeout=240)

    def pause_service(self, name: str) -> None:
        self._script("svc-pause", name, timeout=30)

    def resume_service(self, name: str) -> None:
        self._script("svc-resume", name, timeout=30)

    def service_up(self, name: str) -> bool:
        port = {"postgres": self.postgres_port, "redis": self.redis_port, "kafka": self.kafka_port}[name]
        return procs.port_open(port)

    def describe(self) -> str:
        return (
            f"postgres :{self.postgres_port}, redis :{self.redis_port}, kafka :{self.kafka_port} "
            f"(controller :{self.kafka_controller_port}), state {self.state_dir}"
        )


def default_state_dir() -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix="warehouse-chaos-", dir=os.environ.get("TMPDIR", "/tmp")))
