"""The ways a request is served, over the stages of :mod:`strongroom.server.stages`: a read
on the event loop, a write in a batch of writes (server/batching.py) or alone, each in a
unit of work whose writes commit only once its audit record is durable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from anyio import to_thread

from strongroom.audit.events import RequestFacts, is_read_only
from strongroom.ids import unique_id
from strongroom.protocol import sigv4
from strongroom.protocol.errors import ServiceError, internal_error
from strongroom.server.batching import BatcherClosed, WriteBatcher
from strongroom.server.stages import (
    Response,
    SignedIn,
    Stages,
    _error_of,
    _Exchange,
    _Outcome,
    _Work,
    log,
)
from strongroom.store.engine import WriteAttempted


def _reads_by_name(headers: Mapping[str, str]) -> bool:
    """Whether a JSON-protocol request names (by the X-Amz-Target it is routed by) an
    operation CloudTrail records as read-only. A read may still write (GetSecretValue
    records LastAccessedDate once a day): then it is served again by the write batcher.
    Query-protocol requests (IAM, STS) always take the write path."""
    target = headers.get("x-amz-target")
    return target is not None and _target_reads(target)


@lru_cache(maxsize=256)  # the targets clients send are few; any other just falls out
def _target_reads(target: str) -> bool:
    return is_read_only(target.rpartition(".")[2])


class Pipeline(Stages):
    # How requests are served; the stages (and the constructor) are Stages'. Assigned on
    # the instance when the first write is batched, and when the pipeline closes.
    _batcher: WriteBatcher[_Work, Response] | None = None
    _closed = False

    def handle(self, request: sigv4.HttpRequest, source_ip: str) -> Response:
        """Serve one request; blocking (runs on a worker thread)."""
        return self._serve_alone(lambda: self._execute(request, source_ip))

    def _serve_alone(self, work: _Work) -> Response:
        # The operation's writes stay uncommitted until its audit record is durable, so a
        # request that cannot be audited changes nothing (fail closed).
        with self._store.unit_of_work() as unit:
            exchange, outcome = work()
            if isinstance(outcome, ServiceError):
                unit.rollback()
            try:
                self._audit.write_many(self._events(exchange, _error_of(outcome)))
            except Exception:
                log.exception("audit write failed for request %s", exchange.facts.request_id)
                unit.rollback()
                return self._error_response(exchange, internal_error())
            if isinstance(outcome, ServiceError):
                return self._error_response(exchange, outcome)
            try:
                unit.commit()
            except Exception:
                log.exception("commit failed for request %s", exchange.facts.request_id)
                return self._commit_failed(exchange, outcome)
        return self._success(exchange, outcome)

    async def handle_async(
        self, request: sigv4.HttpRequest, source_ip: str, signed_in: SignedIn | None = None
    ) -> Response:
        """Serve one request from the event loop.

        ``signed_in``: the request's principal was authenticated already (a console
        session); every stage but SigV4 runs as for a signed request.

        A read is served right here, without a thread hop (its rows mostly come from the
        row cache). A write is authenticated, parsed and authorized here too, from a read
        snapshot, and only its operation waits for the write batcher (server/batching.py),
        so that the write lock is held for as little work as possible. A read that turns
        out to write is served again by the batcher, whole."""
        exchange, headers = self._exchange(request, source_ip)
        if not _reads_by_name(headers):
            try:
                with self._store.reads_only():
                    prepared_exchange, prepared = self._prepare(
                        exchange, request, headers, signed_in
                    )
            except WriteAttempted:  # no check writes today; if one ever does, it still works
                return await self._batched(lambda: self._execute(request, source_ip, signed_in))
            if isinstance(prepared, ServiceError):
                # refused: nothing to write
                return await self._answer(prepared_exchange, prepared)
            if prepared.awaits:
                # It waits on something else (Invoke runs a process): never in the write
                # batch; it writes what it must in its own transactions.
                return await self._answer(*await self._perform_async(prepared_exchange, prepared))
            return await self._batched(lambda: self._perform(prepared_exchange, prepared))
        try:
            with self._store.reads_only():
                exchange, outcome = self._run(exchange, request, headers, signed_in)
        except WriteAttempted:
            # Nothing was written or audited yet: serve it again where writing is allowed.
            return await self._batched(lambda: self._execute(request, source_ip, signed_in))
        return await self._answer(exchange, outcome)

    async def _answer(self, exchange: _Exchange, outcome: _Outcome) -> Response:
        """Audit a request that wrote nothing, then answer it."""
        try:
            await self._audit.write_many_async(self._events(exchange, _error_of(outcome)))
        except Exception:
            log.exception("audit write failed for request %s", exchange.facts.request_id)
            return self._error_response(exchange, internal_error())
        if isinstance(outcome, ServiceError):
            return self._error_response(exchange, outcome)
        return self._success(exchange, outcome)

    async def _batched(self, work: _Work) -> Response:
        if self._closed:
            # Shutting down: served alone, as before batching (audited, or refused with a
            # 500 once the audit log has closed).
            return await to_thread.run_sync(self._serve_alone, work)
        if self._batcher is None:
            self._batcher = WriteBatcher(self.serve_batch)
        try:
            return await self._batcher.submit(work)
        except BatcherClosed:
            return await to_thread.run_sync(self._serve_alone, work)
        except Exception:
            # serve_batch itself broke (its connection, say): the batch was rolled back and
            # nothing of it committed; the request fails as any unauditable one does.
            log.exception("a write batch failed as a whole")
            facts = RequestFacts(unique_id(), self._clock.now(), "", "", "")
            exchange = _Exchange(facts, unique_id())
            return self._error_response(exchange, internal_error())

    def serve_batch(self, works: Sequence[_Work]) -> list[Response]:
        """Serve write requests together (server/batching.py): each in a savepoint of one
        transaction, their audit records durable in one group commit, then one commit."""
        try:
            batch = self._store.begin_write_batch()
        except Exception:
            log.exception("could not start a write batch; serving its requests one by one")
            return [self._serve_alone(work) for work in works]
        try:
            served: list[tuple[_Exchange, _Outcome]] = []
            for work in works:
                with batch.unit() as unit:
                    exchange, outcome = work()
                    if isinstance(outcome, ServiceError):
                        unit.rollback()
                    else:
                        unit.commit()  # kept for the batch's commit
                served.append((exchange, outcome))
            try:
                self._audit.write_many(
                    [event for e, o in served for event in self._events(e, _error_of(o))]
                )
            except Exception:
                log.exception("audit write failed for a batch of %d requests", len(served))
                batch.rollback()
                return [self._error_response(exchange, internal_error()) for exchange, _ in served]
            try:
                batch.commit()
            except Exception:
                log.exception("commit failed for a batch of %d requests", len(served))
                return [self._commit_failed(exchange, outcome) for exchange, outcome in served]
        finally:
            batch.close()
        return [
            self._error_response(exchange, outcome)
            if isinstance(outcome, ServiceError)
            else self._success(exchange, outcome)
            for exchange, outcome in served
        ]

    def _commit_failed(self, exchange: _Exchange, outcome: _Outcome) -> Response:
        if isinstance(outcome, ServiceError):
            return self._error_response(exchange, outcome)  # audited as it was answered
        failure = internal_error()
        self._audit_commit_failure(exchange, failure)
        return self._error_response(exchange, failure)

    def close(self) -> None:
        """Serve the writes still waiting; later ones are served one by one."""
        self._closed = True
        if self._batcher is not None:
            self._batcher.close()
