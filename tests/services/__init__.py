"""Real servers the tests start themselves (or find through an environment variable)."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """End a server the tests started: SIGTERM, then SIGKILL if it is still there after
    ``timeout`` seconds. Nothing to do for one that never started or has ended."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
