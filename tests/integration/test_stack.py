"""The local stack is what it claims to be.

PostgreSQL >= 15 and Redis answer over TCP on 127.0.0.1; the broker is Apache Kafka itself (a
java process with main class kafka.Kafka, in KRaft mode), and a consumer group's committed offsets
survive a consumer's restart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    return host, int(port)


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes of TCP listeners on `port` (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                    inodes.add(inode)
    return inodes


def _listening_processes(port: int) -> list[list[str]]:
    """The command lines (argv) of the processes holding a listening socket on `port`."""
    targets = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in targets for fd in (proc / "fd").iterdir()):
                found.append((proc / "cmdline").read_bytes().rstrip(b"\0").decode().split("\0"))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_postgres_over_tcp(database_url: str) -> None:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT host(inet_server_addr()), current_setting('server_version_num')::int, current_database()"
        ).fetchone()
    assert row is not None
    addr, version, dbname = row
    assert addr is not None, "connected over a unix socket, not TCP"
    if psycopg.conninfo.conninfo_to_dict(database_url).get("host") in LOCAL_HOSTS:
        assert addr == "127.0.0.1"
    assert version >= 150000, f"PostgreSQL {version} is older than 15"
    assert dbname.endswith("_test")


def test_redis_over_tcp(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert client.connection_pool.connection_class is redis.Connection  # TCP, not a unix socket
        key = f"test:stack:{uuid.uuid4().hex}"
        client.set(key, "stocked", ex=60)
        assert client.get(key) == b"stocked"
        client.delete(key)
        assert client.info("server")["redis_version"]
        host = client.connection_pool.connection_kwargs["host"]
        if host in LOCAL_HOSTS:
            assert str(client.client_info()["laddr"]).startswith("127.0.0.1:")
    finally:
        client.close()


def test_broker_is_apache_kafka_in_kraft_mode(kafka_bootstrap: str) -> None:
    host, port = _host_port(kafka_bootstrap)
    if host in LOCAL_HOSTS:
        processes = _listening_processes(port)
        if not processes and os.geteuid() != 0:
            pytest.skip(f"cannot see which process listens on port {port} without root")
        assert processes, f"no process found listening on port {port}"
        assert any(Path(argv[0]).name == "java" and "kafka.Kafka" in argv for argv in processes), (
            f"the listener on port {port} is not java ... kafka.Kafka: {processes}"
        )

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="pytest-stack")
    try:
        brokers = admin.describe_cluster()["brokers"]
        assert brokers
        version = admin.get_broker_version_data(brokers[0]["broker_id"]).broker_version
        assert version >= (3, 7), f"broker speaks Kafka {version}"
        # Only a KRaft cluster has a metadata quorum to describe.
        quorum = admin.describe_metadata_quorum()
        assert quorum["topics"][0]["topic_name"] == "__cluster_metadata"
    finally:
        admin.close()


def _consume(
    consumer: KafkaConsumer, count: int, timeout_s: float = 30.0, linger_s: float = 0.0
) -> list[bytes]:
    """Poll until `count` values arrived (and then `linger_s` more seconds, to catch extras)."""
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    linger_until = None
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(record.value for record in records)
        if len(values) >= count:
            linger_until = linger_until or time.monotonic() + linger_s
            if time.monotonic() >= linger_until:
                break
    return values


def test_consumer_group_resumes_from_committed_offsets(kafka_bootstrap: str, unique_topic: str) -> None:
    group = f"pytest-stack-{uuid.uuid4().hex[:8]}"
    first = [f"first-{i}".encode() for i in range(12)]
    second = [f"second-{i}".encode() for i in range(5)]

    def consumer() -> KafkaConsumer:
        return KafkaConsumer(
            unique_topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        for i, value in enumerate(first):
            producer.send(unique_topic, key=str(i).encode(), value=value)
        producer.flush(timeout=30)

        c1 = consumer()
        try:
            assert sorted(_consume(c1, len(first))) == sorted(first)
            c1.commit()
        finally:
            c1.close()

        for i, value in enumerate(second):
            producer.send(unique_topic, key=str(i).encode(), value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()

    c2 = consumer()
    try:
        assert sorted(_consume(c2, len(second), linger_s=2.0)) == sorted(second)
        c2.commit()
    finally:
        c2.close()

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="pytest-stack")
    try:
        committed = admin.list_group_offsets({group: None})[group]
        assert sum(meta.offset for meta in committed.values()) == len(first) + len(second)
    finally:
        admin.close()


def test_env_example_lists_every_setting() -> None:
    """Every variable common/adapters/config.py reads, and the stack's ports, appear in .env.example."""
    from common.adapters.config import Settings

    root = Path(__file__).resolve().parents[2]
    read = {name.upper() for name in Settings.model_fields}
    assert "DATABASE_URL" in read
    example = (root / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE))
    missing = sorted((read | {"POSTGRES_PORT", "REDIS_PORT", "KAFKA_PORT"}) - listed)
    assert not missing, f".env.example lacks {missing}"


# ----------------------------------------------------------------------- the Python environments

STACK_PYTHON = Path(__file__).resolve().parents[2] / "infra" / "scripts" / "stack-python.sh"


def _find_python(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """stack-python.sh's find_python, in a shell whose PATH holds only `tmp_path/bin` and the system."""
    script = (
        f'source "{STACK_PYTHON.parent}/stack-env.sh"; source "{STACK_PYTHON.parent}/stack-common.sh";'
        f' source "{STACK_PYTHON}"; find_python'
    )
    return subprocess.run(
        ["bash", "-c", script],
        env={
            "PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "STACK_DIR": str(tmp_path / "s"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_find_python_passes_over_a_refusing_pyenv_shim_to_pyenvs_interpreter(tmp_path: Path) -> None:
    """pyenv's python3.13 shim exits 127 when 3.13 is not selected: the real path must be found."""
    (tmp_path / "bin").mkdir()
    shim = tmp_path / "bin" / "python3.13"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.13: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    real = Path(getattr(sys, "_base_executable", sys.executable))
    for version in ("3.13.2", "3.13.10", "3.12.9"):
        bindir = tmp_path / "pyenv" / "versions" / version / "bin"
        bindir.mkdir(parents=True)
        (bindir / f"python{version[:4]}").symlink_to(real)
    done = _find_python(tmp_path, PYENV_ROOT=str(tmp_path / "pyenv"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "pyenv" / "versions" / "3.13.10" / "bin" / "python3.13")


def test_find_python_refuses_a_python_set_that_is_not_3_13(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    old = tmp_path / "bin" / "python3.11"
    old.write_text("#!/bin/sh\nexit 1\n")  # how python3.11 answers stack-python.sh's 3.13 check
    old.chmod(0o755)
    done = _find_python(tmp_path, PYTHON=str(old))
    assert done.returncode != 0
    assert f"PYTHON={old} is not CPython 3.13" in done.stderr


def test_the_venvs_are_python_3_13_from_their_locks() -> None:
    root = Path(__file__).resolve().parents[2]
    assert sys.version_info[:2] == (3, 13)
    for venv in (root / ".venv", root / "tools" / "lint" / ".venv"):
        cfg = dict(
            line.split(" = ", 1) for line in (venv / "pyvenv.cfg").read_text().splitlines() if " = " in line
        )
        assert cfg["version_info"].startswith("3.13."), venv
        assert "uv" in cfg, f"{venv} was not made by uv sync"
    # The lint tools are in their own environment only, the app's dependencies in .venv only.
    lint_site = next((root / "tools" / "lint" / ".venv" / "lib").glob("python3.13/site-packages"))
    app_site = next((root / ".venv" / "lib").glob("python3.13/site-packages"))
    assert (lint_site / "cfnlint").is_dir() and not (app_site / "cfnlint").exists()
    assert (app_site / "fastapi").is_dir() and not (lint_site / "fastapi").exists()
