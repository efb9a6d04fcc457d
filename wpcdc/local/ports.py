"""The plumbing of the local stack: free loopback ports, waiting for a listener,
stopping a child server."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A port nobody listens on right now (the OS picks; a race is possible but rare)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_listener(host: str, port: int, timeout: float) -> bool:
    """True once something accepts TCP connections on host:port, False after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, and SIGKILL if the process has not exited within ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def log_tail(log: Path, lines: int = 20) -> str:
    """The last ``lines`` of a server's log, for an error that says why it did not start."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {log})"
