"""The per-point store of a sweep: ``DIR/points.jsonl``.

One JSON line per finished point, appended as soon as the client has its
result: ``{"point": key, "config": ..., "stages": {name: result}, ...}``.
Each line goes out in one ``write`` on a file opened with ``O_APPEND`` and
is flushed to disk before the next, so a crash leaves at most one torn last
line; :class:`Store` cuts such a tail when it opens the file, so that the
next line starts clean.  A later line for a key replaces an earlier one
(``--retry-failed`` appends the new results).  One sweep at a time writes a
directory: the store holds an exclusive lock (``DIR/.lock``) while open.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from nnloom.hw.errors import InputError

__all__ = ["Store", "StoreBusy", "STORE_NAME"]

STORE_NAME = "points.jsonl"


class StoreBusy(InputError):
    """Another sweep holds the directory's lock."""


class Store:
    """Finished points of a sweep directory, keyed by point hash.  Use as a
    context manager (it takes the directory's lock)."""

    def __init__(self, out_dir):
        self.dir = Path(out_dir)
        self.path = self.dir / STORE_NAME
        self.records: dict[str, dict] = {}
        self._lock = self._fd = None

    def __enter__(self) -> "Store":
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.dir / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StoreBusy(f"{self.dir}: -o: expected a directory no other sweep is writing, "
                            "got one locked by a running sweep") from None
        self._load()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)
        self._lock.close()      # releases the lock
        self._fd = self._lock = None

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        good = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break                       # a torn last line: the write never finished
            try:
                rec = json.loads(line)
            except ValueError:
                break
            self.records[rec["point"]] = rec
            good += len(line)
        if good < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(good)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def add(self, record: dict) -> None:
        """Append one finished point (one write, then fsync)."""
        line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
        view = memoryview(line)
        while view:                 # a regular file takes it in one write; loop all the same
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)
        self.records[record["point"]] = record

    @staticmethod
    def read(out_dir) -> list[dict]:
        """Every line of a directory's store, in order, torn tail left out
        (for tests and tools; no lock taken)."""
        path = Path(out_dir) / STORE_NAME
        out = []
        if path.exists():
            for line in path.read_bytes().splitlines(keepends=True):
                if not line.endswith(b"\n"):
                    break
                out.append(json.loads(line))
        return out
