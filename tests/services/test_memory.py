"""The heap stays small (glibc, services.memory): memory a big job freed goes back to the
system, and threads share two heap arenas instead of one each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from services.memory import release_freed_memory
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
rows = [bytearray(1000) for _ in range(60_000)]  # ~60 MiB in glibc's heap, as a sync's rows
pinned = bytearray(1000)  # allocated last: the heap's top cannot simply shrink
del rows
freed = rss()
ran = release_freed_memory()
print(json.dumps({"ran": ran, "freed": freed, "released": rss()}))
"""


def test_memory_freed_after_a_big_job_is_returned_to_the_system() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout)
    assert probe["ran"], "glibc's malloc_trim was not found"
    assert probe["freed"] - probe["released"] > 30, probe


ARENAS_PROBE = """
import ctypes, ctypes.util, os, sys, threading
from services.memory import limit_malloc_arenas
limited = limit_malloc_arenas() if sys.argv[1] == "limit" else False
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
held, barrier = [], threading.Barrier(8)
def worker():
    held.append(libc.malloc(200_000))  # each thread allocates while the others do
    barrier.wait()
threads = [threading.Thread(target=worker) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
os.dup2(1, 2)  # malloc_stats writes to stderr
print("limited", limited, flush=True)
libc.malloc_stats()
"""


def _arenas(mode: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", ARENAS_PROBE, mode],
        cwd=ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return "limited True" in done.stdout, done.stdout.count("Arena ")


def test_threads_share_two_heap_arenas_instead_of_one_each() -> None:
    limited, arenas = _arenas("limit")
    assert limited, "glibc's mallopt was not found"
    assert arenas <= 2
    _, unlimited = _arenas("default")
    assert unlimited > 2  # what the limit saves: an arena per allocating thread
