"""teledrop.server.tune_malloc: the allocator settings a worker gets after the fork.

Each case runs in a fresh interpreter, since mallopt changes the process for good. The
measurable point: threads that allocate at the same time share at most two arenas, where
glibc would give each its own (the RSS of a worker serving many uploads at once,
docs/performance.md), and an operator's own ``MALLOC_*`` variable wins.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from teledrop.server import MALLOC_TUNING

SCRIPT = r"""
import ctypes, json, os, re, sys, tempfile, threading
from teledrop.server import tune_malloc

applied = tune_malloc() if sys.argv[1] == "tune" else []
barrier, held = threading.Barrier(8), []

def allocate():
    barrier.wait()  # all at once, as concurrent uploads do
    held.append([bytearray(200_000) for _ in range(5)])
    barrier.wait()

threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()

libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "malloc.xml")
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    arenas = len(re.findall(r"<heap nr=", open(path).read()))
print(json.dumps({"applied": applied, "arenas": arenas}))
"""

ALL = [name for _param, name, _value in MALLOC_TUNING]


def run(mode: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], env={**clean, **env},
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_concurrent_threads_of_a_tuned_worker_share_two_arenas() -> None:
    tuned, untuned = run("tune"), run("plain")
    assert tuned["applied"] == ALL == ["MALLOC_ARENA_MAX"]
    assert untuned["arenas"] > 2, untuned  # glibc's default: one per allocating thread
    assert tuned["arenas"] == 2, tuned


@pytest.mark.parametrize("name", ALL)
def test_a_setting_the_operator_made_in_the_environment_is_left_alone(name: str) -> None:
    result = run("tune", **{name: "4"})
    assert result["applied"] == [n for n in ALL if n != name]
    assert result["arenas"] == 4  # the operator's value, not teledrop's
