"""What the benchmarks share: a sandbox in its own process, and this process's CPU time."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stat_cpu(stat: Path) -> float:
    """User + system CPU seconds from a /proc …/stat file (fields after the command name, which may hold spaces)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """Another process's CPU seconds so far (user + system), from /proc."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def status_mb(field: str) -> float:
    """A /proc/self/status figure (VmRSS, VmHWM) in MB. (VmHWM, not ru_maxrss, for a peak: ru_maxrss survives exec,
    so a spawned child would report its parent's peak.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def thread_cpu() -> dict[str, float]:
    """This process's CPU seconds: the event loop's thread, and the others (aiosqlite's, the resolver's)."""
    import threading

    found: dict[str, float] = {}
    main = threading.main_thread().native_id
    for task in Path("/proc/self/task").iterdir():
        name = "event loop" if int(task.name) == main else "other threads (aiosqlite, …)"
        try:
            spent = _stat_cpu(task / "stat")
        except OSError:  # the thread ended meanwhile
            continue
        found[name] = found.get(name, 0.0) + spent
    return found


def start_sandbox(seed: int) -> tuple[subprocess.Popen, str]:
    """`filmroll sandbox` on a free loopback port; returns the process and its base URL once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "filmroll", "sandbox", "--port", str(port), "--seed", str(seed)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            httpx.get(base + "/_sandbox/", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the sandbox did not start")
