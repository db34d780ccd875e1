"""A background loop for local mode's stand-ins of AWS pollers (SQS → Lambda, execution events)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("videogen.local")


class BackgroundLoop:
    """Calls ``tick()`` on a daemon thread until stopped, pausing ``pause`` seconds between ticks.
    An error is logged and the loop goes on, as AWS's own pollers do."""

    name = "background-loop"

    def __init__(self, pause: float) -> None:
        self._pause = pause
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def tick(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end after its current tick, without waiting for it (see ``stop``)."""
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("%s error", self.name)
                self._stop.wait(1)
            self._stop.wait(self._pause)
