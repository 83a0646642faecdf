"""The rotation runner: claims the rotations that are due and drives each through the four
steps of AWS's rotation protocol by invoking its function.

Every worker runs :meth:`RotationRunner.sweep` on an interval. A claim is one transaction
with the state change it makes (:meth:`SecretsManager.claim_rotations`), so a due rotation
starts once however many workers (and nodes) sweep. Each step renews the claim; a worker
that dies leaves a claim whose lease runs out, and the next sweep abandons it
(``RotationAbandoned``) and tries again. A step that fails (the function raised, timed out,
ran out of memory, or AWSCURRENT did not move) is ``RotationFailed``, retried after a
delay and then in the next window; AWSCURRENT keeps serving the old value throughout.

Each state change commits only once its CloudTrail service events (``eventType``
``AwsServiceEvent``, as the user guide's "Secrets Manager events" lists them) are durable in
the audit log: a change that cannot be audited does not happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from anyio import to_thread

from strongroom.audit.background import audited
from strongroom.audit.log import AuditLog
from strongroom.clock import Clock
from strongroom.secrets.rotation import (
    SERVICE_PRINCIPAL,
    Observe,
    RotationClaim,
    rotation_record,
)
from strongroom.secrets.service import SecretsManager
from strongroom.store.engine import Store
from strongroom.types import Functions, Invocation

log = logging.getLogger("strongroom.rotation")
T = TypeVar("T")


class RotationRunner:
    def __init__(
        self,
        secrets: SecretsManager,
        functions: Functions | None,
        store: Store,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self._secrets = secrets
        self._functions = functions
        self._store = store
        self._audit = audit
        self._clock = clock
        self._running: set[asyncio.Task[None]] = set()

    async def sweep(self) -> int:
        """Start every rotation that is due, run them to their end; how many started."""
        claims = await self._claim()
        await asyncio.gather(*(self._rotate(claim) for claim in claims))
        return len(claims)

    async def start_due(self) -> int:
        """Start every rotation that is due in the background (a slow function does not
        hold up the next sweep); how many started."""
        claims = await self._claim()
        for claim in claims:
            task = asyncio.create_task(self._rotate(claim))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claims)

    @property
    def busy(self) -> bool:
        """Whether rotations this worker started are still running."""
        return bool(self._running)

    async def _claim(self) -> list[RotationClaim]:
        if not await to_thread.run_sync(self._secrets.has_due_rotations):
            return []
        return await to_thread.run_sync(self.audited, self._secrets.claim_rotations)

    async def _rotate(self, claim: RotationClaim) -> None:
        for step in claim.steps:
            if step != claim.steps[0] and not await to_thread.run_sync(
                self._secrets.rotation_step, claim, step
            ):
                log.info("rotation of %s stopped: its claim was taken away", claim.arn)
                return
            reason = await self._invoke(claim, step)
            if claim.test:
                await to_thread.run_sync(
                    self.audited, partial(self._secrets.finish_test, claim, reason)
                )
                return
            if reason is not None:
                await self._fail(claim, step, reason)
                return
        problem = await to_thread.run_sync(
            self.audited, lambda observe: self._secrets.finish_rotation(claim, observe)
        )
        if problem is None:
            log.info("rotated %s (version %s)", claim.arn, claim.token)
        else:
            log.warning("rotation of %s failed: %s", claim.arn, problem)

    async def _invoke(self, claim: RotationClaim, step: str) -> str | None:
        """Run ``step``; None if it succeeded, else why not (no function output in it: the
        function's own log has that)."""
        if self._functions is None:
            return "no function service is available"
        payload = json.dumps(claim.event(step)).encode()
        try:
            result = await self._functions.invoke(
                claim.lambda_arn,
                payload,
                service_principal=SERVICE_PRINCIPAL,
                source_account=claim.account_id,
                source_arn=claim.arn,
            )
        except Exception as problem:
            log.exception("invoking %s for %s failed", claim.lambda_arn, claim.arn)
            return f"the function could not be invoked ({type(problem).__name__})"
        if result.function_error is None:
            return None
        return f"{result.function_error}: {error_type(result)}"

    async def _fail(self, claim: RotationClaim, step: str, reason: str) -> None:
        log.warning(
            "rotation of %s failed in %s (attempt %d): %s", claim.arn, step, claim.attempt, reason
        )
        await to_thread.run_sync(
            self.audited, lambda observe: self._secrets.fail_rotation(claim, step, reason, observe)
        )

    def audited(self, work: Callable[[Observe], T]) -> T:
        """Run ``work`` in one transaction that commits only once the service events it
        observed are in the audit log (if they cannot be written, nothing changed)."""
        return audited(
            self._store,
            self._audit,
            lambda add: work(lambda event: add(rotation_record(event, self._clock.now()))),
        )


def error_type(result: Invocation) -> str:
    """The ``errorType`` of Lambda's error document (never its message, which is the
    function's own text and could hold anything)."""
    try:
        document = json.loads(result.payload or b"{}")
    except ValueError:
        return "Unhandled"
    kind = document.get("errorType") if isinstance(document, dict) else None
    return str(kind)[:100] if kind else "Unhandled"
