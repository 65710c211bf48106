"""After a big job frees its memory, the bot gives it back to the system (glibc)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json
from bot.memory import release_freed_memory
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
