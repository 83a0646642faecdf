"""Group commit of write requests.

A write is only acknowledged once its audit record and its commit are both durable: two
fsyncs, with SQLite's write lock held between them. One request at a time, that caps a
deployment at a few hundred writes a second whatever the hardware. The batcher runs the
writes that are waiting together, on one thread per worker process: one transaction with
a savepoint per request, one group commit of their audit records, one commit
(:meth:`strongroom.server.pipeline.Pipeline.serve_batch`). A request that fails rolls
back its own savepoint only; if the audit or the commit fails, every request of the
batch fails and none of them changed anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger("strongroom.batching")

T = TypeVar("T")  # what is waiting: a request's work
R = TypeVar("R")  # what it is answered

MAX_BATCH = 64  # requests per transaction: bounds how long one batch holds the write lock


@dataclass(frozen=True)
class _Waiting(Generic[T, R]):
    work: T
    future: asyncio.Future[R]


class BatcherClosed(RuntimeError):
    pass


class WriteBatcher(Generic[T, R]):
    """Hands waiting write requests to ``serve`` in batches, on a thread of its own."""

    def __init__(
        self,
        serve: Callable[[Sequence[T]], Sequence[R]],
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._serve = serve
        self._max_batch = max_batch
        self._cond = threading.Condition()
        self._waiting: list[_Waiting[T, R]] = []
        self._closed = False
        self.batches = 0
        self.requests = 0
        self._thread = threading.Thread(target=self._run, name="write-batcher", daemon=True)
        self._thread.start()

    async def submit(self, work: T) -> R:
        """What ``serve`` answered for ``work``, once its batch has committed."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        with self._cond:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            self._waiting.append(_Waiting(work, future))
            self._cond.notify()
        return await future

    def close(self) -> None:
        """Serve what is waiting, then stop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:
                    return
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
            try:
                answers: Sequence[R] | BaseException = self._serve([item.work for item in batch])
            except BaseException as problem:  # serve answers every request; this is a bug
                log.exception("a batch of %d write requests failed", len(batch))
                answers = problem
            self.batches += 1
            self.requests += len(batch)
            _settle(batch, answers)


def _settle(batch: list[_Waiting[T, R]], answers: Sequence[R] | BaseException) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[R], R | BaseException]]]
    by_loop = {}
    for number, item in enumerate(batch):
        answer: R | BaseException = (
            answers if isinstance(answers, BaseException) else answers[number]
        )
        by_loop.setdefault(item.future.get_loop(), []).append((item.future, answer))
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(_resolve, settled)


def _resolve(settled: list[tuple[asyncio.Future[R], R | BaseException]]) -> None:
    for future, answer in settled:
        if future.done():
            continue
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
