"""Whole lines only: the handlers run in many threads here (one Lambda each on AWS), and print()
writes a line's text and its newline separately, so two metric (EMF) lines could interleave."""

from __future__ import annotations

import threading
from typing import TextIO


class LineWriter:
    """A stdout stand-in that buffers per thread and writes each completed line in one call."""

    def __init__(self, target: TextIO) -> None:
        self._target = target
        self._local = threading.local()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        buffered = getattr(self._local, "buffer", "") + text
        if "\n" in buffered:
            complete, _, rest = buffered.rpartition("\n")
            with self._lock:
                self._target.write(complete + "\n")
                self._target.flush()
            buffered = rest
        self._local.buffer = buffered
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return getattr(self._target, "encoding", "utf-8")
