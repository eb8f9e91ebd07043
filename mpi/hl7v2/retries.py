"""The background loops of a server that must outlive failures: a wait that a stop cuts short,
and a count of failures in a row that backs off and keeps the log readable."""

from __future__ import annotations

import asyncio
import logging

_MAX_FAILURE_WAIT_SECONDS = 60.0


async def first_of(*events: asyncio.Event, timeout: float | None = None) -> None:
    """Wait until one of ``events`` is set, or ``timeout`` seconds."""
    waiting = {asyncio.ensure_future(event.wait()) for event in events}
    try:
        await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waiting:
            task.cancel()


class Failures:
    """Consecutive failures of one loop: the first logged with its traceback, the next ones in a
    line each, and a wait before the next try that doubles up to a minute."""

    def __init__(self, log: logging.Logger, doing: str) -> None:
        self._log = log
        self._doing = doing
        self.count = 0

    def record(self, error: Exception) -> None:
        self.count += 1
        if self.count == 1:
            self._log.exception("%s failed; trying again", self._doing)
        else:
            self._log.error("%s failed %d times in a row: %s", self._doing, self.count, error)

    def cleared(self) -> None:
        if self.count:
            self._log.info("%s works again after %d failures", self._doing, self.count)
        self.count = 0

    def wait(self, interval: float) -> float:
        """How long to wait before the next try: ``interval`` while all is well."""
        return min(interval * 2 ** min(self.count, 16), _MAX_FAILURE_WAIT_SECONDS) if self.count else interval
