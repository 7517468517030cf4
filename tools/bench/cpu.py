"""CPU seconds and memory of the processes under test, read from /proc (everything runs on this host).

With the events or requests a run handled, CPU time gives a cost per event that, unlike events/s,
hardly depends on what else the machine is doing: the steadier figure on a shared machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit


def _stat_fields(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def proc_cpu_seconds(pid: int | str) -> float:
    """User + system CPU seconds of one process so far."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cmdlines() -> dict[int, bytes]:
    found = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found[int(pid)] = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
    return found


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu_seconds(pid)
        except OSError:
            continue
    return total


def pg_backend_cpu(database_url: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends of our database.

    A backend that exits within a run takes its CPU with it: open the connections before the
    counters start and keep them."""
    parts = urlsplit(database_url)
    title = f" {parts.username} {parts.path.lstrip('/')} ".encode()
    commands = _cmdlines()
    backends = [pid for pid, cmd in commands.items() if cmd.startswith(b"postgres:") and title in cmd]
    # Other stacks on this host (other worktrees' servers) have backends of the same user and
    # database name: keep only the children of the server listening on our port, when it is found.
    port = f"\0-p\0{parts.port or 5432}\0".encode()
    servers = {pid for pid, cmd in commands.items() if b"postgres\0" in cmd and port in cmd}
    if servers:
        backends = [pid for pid in backends if _parent(pid) in servers]
    return _cpu_of(backends)


def _parent(pid: int) -> int | None:
    try:
        return int(_stat_fields(pid)[1])
    except OSError:
        return None


def redis_server_cpu(redis_url: str) -> float:
    """CPU seconds of the redis-server listening on REDIS_URL's port, 0 if not found."""
    port = f":{urlsplit(redis_url).port or 6379}".encode()
    pids = [pid for pid, cmd in _cmdlines().items() if cmd.startswith(b"redis-server") and port in cmd]
    return _cpu_of(pids[:1])


def broker_cpu(bootstrap: str) -> float:
    """CPU seconds of the local Kafka broker on the bootstrap port (the JVM running kafka.Kafka
    whose command line or server.properties names that port), 0 if not found."""
    port = bootstrap.split(",")[0].rsplit(":", 1)[-1].encode()
    for pid, cmdline in _cmdlines().items():
        if b"kafka.Kafka" in cmdline and (port in cmdline or _config_names(cmdline, port)):
            return _cpu_of([pid])
    return 0.0


def _config_names(cmdline: bytes, port: bytes) -> bool:
    """Whether the broker's server.properties (its last argument) listens on `port`."""
    try:
        return b":" + port in Path(cmdline.rstrip(b"\0").split(b"\0")[-1].decode()).read_bytes()
    except (OSError, UnicodeDecodeError):
        return False


def process_tree_cpu(root: int) -> float:
    """User + system CPU seconds of `root` and all its descendants (supervisor, uvicorn, workers)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat_fields(entry)
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def children_running(root: int, marker: bytes) -> list[int]:
    """The direct children of `root` whose command line contains `marker` (say, the pollers)."""
    pids = []
    for pid, cmdline in _cmdlines().items():
        try:
            ppid = int(_stat_fields(pid)[1])
        except OSError:
            continue
        if ppid == root and marker in cmdline:
            pids.append(pid)
    return pids


def rss_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in kB from /proc/PID/status; (0, 0) once the process is gone."""
    rss = hwm = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return rss, hwm
