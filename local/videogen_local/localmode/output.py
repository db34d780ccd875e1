"""Whole lines only: the handlers run in many threads here (one Lambda each on AWS), and print()
writes a line's text and its newline separately, so two metric (EMF) lines could interleave."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TextIO

# The function whose handler runs on this thread (set by patches._invoke_lambda). CloudWatch files each
# line under its function's log group whatever the line says; local mode stamps it as Logs Insights'
# ``@log`` field. The lines' own function_name cannot serve: Powertools keeps the Lambda context in the
# logger, which every handler thread of this one process shares.
CURRENT_FUNCTION = threading.local()


def stamped(line: str, function: str | None) -> str:
    """A JSON log line with ``"@log": "/aws/lambda/<function>"`` first (metric lines stay as they are)."""
    if not function or not line.startswith("{") or line.startswith('{"_aws"') or line[1:].lstrip().startswith("}"):
        return line
    return f'{{"@log": "/aws/lambda/{function}", {line[1:]}'


class LineWriter:
    """A stdout stand-in that buffers per thread and writes each completed line in one call.

    ``hook`` sees every completed line first (local mode copies the EMF lines to its metrics file);
    a line for which it answers True is not written to ``target``."""

    def __init__(self, target: TextIO, hook: Callable[[str], bool] | None = None) -> None:
        self._target = target
        self._hook = hook
        self._local = threading.local()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        buffered = getattr(self._local, "buffer", "") + text
        if "\n" in buffered:
            complete, _, rest = buffered.rpartition("\n")
            function = getattr(CURRENT_FUNCTION, "name", None)
            lines = [stamped(line, function) for line in complete.split("\n")]
            if self._hook is not None:
                hook = self._hook
                lines = [line for line in lines if not hook(line)]
            if lines:
                with self._lock:
                    self._target.write("\n".join(lines) + "\n")
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
