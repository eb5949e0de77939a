"""teledrop.server.tune_malloc: the allocator settings a worker gets after the fork.

Each case runs in a fresh interpreter, since mallopt changes the process for good. The
measurable point of the thresholds: parsing a multipart body the way an upload does (1 MiB
reads into werkzeug's decoder) must reuse memory instead of faulting in fresh pages for
every MiB, which is what glibc's defaults did (docs/performance.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, os, resource, sys
from werkzeug.sansio.multipart import Data, Epilogue, MultipartDecoder, NeedData
from teledrop.server import tune_malloc
from teledrop.web.body import MAX_DECODER_BUFFER, READ_SIZE

applied = tune_malloc() if sys.argv[1] == "tune" else []
body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        + os.urandom(READ_SIZE) * 64 + b"\r\n--b--\r\n")

def parse():
    decoder = MultipartDecoder(b"b", max_form_memory_size=MAX_DECODER_BUFFER)
    buffer, view, received = bytearray(READ_SIZE), memoryview(body), 0
    for start in range(0, len(body) + 1, READ_SIZE):
        piece = view[start:start + READ_SIZE]
        buffer[:len(piece)] = piece
        decoder.receive_data(memoryview(buffer)[:len(piece)] if piece else None)
        event = decoder.next_event()
        while not isinstance(event, (NeedData, Epilogue)):
            received += len(event.data) if isinstance(event, Data) else 0
            event = decoder.next_event()
    return received

parse()  # the first pass may grow the heap once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
received = parse()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "received": received, "faults": faults}))
"""

MiB = 1024 * 1024
ALL = ["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]


def run(mode: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], env={**clean, **env},
                          capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout)


def test_tuned_worker_parses_a_multipart_body_without_faulting_in_fresh_pages() -> None:
    tuned, untuned = run("tune"), run("plain")
    assert tuned["applied"] == ALL
    assert tuned["received"] == untuned["received"] == 64 * MiB
    # glibc's defaults: ~47,000 faults (185 MiB of fresh pages) for these 64 MiB
    assert untuned["faults"] > 10_000, untuned
    assert tuned["faults"] < 500, tuned


@pytest.mark.parametrize("name", ALL)
def test_a_setting_the_operator_made_in_the_environment_is_left_alone(name: str) -> None:
    assert run("tune", **{name: "1048576"})["applied"] == [n for n in ALL if n != name]
