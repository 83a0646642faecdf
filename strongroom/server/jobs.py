"""Background jobs, audited like requests: a secret purged after its recovery window, a
KMS key deleted after its waiting period, a KMS key rotated on schedule.

Each job is one transaction (:meth:`Store.unit_of_work`, as the request pipeline uses)
that commits only once the audit records of what it did are durable; if they cannot be
written, the job changes nothing and the next sweep tries again (fail closed).

The records are CloudTrail's AWS service events (``eventType`` ``AwsServiceEvent``, no
request): KMS writes ``DeleteKey`` and ``RotateKey`` with ``invokedBy`` "AWS Internal"
(KMS developer guide, "DeleteKey" and "RotateKey" log entries); Secrets Manager writes
``EndSecretVersionDelete`` when a secret's deletion ends (Secrets Manager user guide,
"Log entries for deletion").
CloudWatch Logs deletes the log events older than a log group's retention without a
CloudTrail record of its own; we record each invocation log the retention removes as the
service's ``DeleteLogStream`` (``invokedBy`` logs.amazonaws.com), so the audit trail says
what left the store and why (``serviceEventDetails``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from strongroom.audit.background import audited
from strongroom.audit.events import build_service_event
from strongroom.functions.log_groups import PurgedLog
from strongroom.keys.kms import KeyRecord
from strongroom.secrets.repository import SecretRecord

if TYPE_CHECKING:
    from strongroom.server.deployment import Deployment

T = TypeVar("T")
Observe = Callable[[T], None]

KMS_SOURCE = "kms.amazonaws.com"
KMS_INVOKER = "AWS Internal"  # what KMS's own service events name as userIdentity.invokedBy
SECRETS_SOURCE = "secretsmanager.amazonaws.com"
LOGS_SOURCE = "logs.amazonaws.com"


def purge_secrets(deployment: Deployment) -> int:
    """Remove secrets whose recovery window has ended: ``EndSecretVersionDelete`` each."""

    def event(record: SecretRecord) -> dict[str, Any]:
        return build_service_event(
            time=deployment.clock.now(),
            event_source=SECRETS_SOURCE,
            event_name="EndSecretVersionDelete",
            account_id=record.account_id,
            region=record.region,
            invoked_by=SECRETS_SOURCE,
            resources=[record.arn],
        )

    return _audited(deployment, deployment.secrets.purge_expired, event)


def purge_keys(deployment: Deployment) -> int:
    """Delete KMS keys whose waiting period has ended: ``DeleteKey`` each."""

    def event(record: KeyRecord) -> dict[str, Any]:
        return build_service_event(
            time=deployment.clock.now(),
            event_source=KMS_SOURCE,
            event_name="DeleteKey",
            account_id=record.account_id,
            region=record.region,
            invoked_by=KMS_INVOKER,
            resources=[record.arn],
        )

    return _audited(deployment, deployment.keys.purge_expired_keys, event)


def rotate_keys(deployment: Deployment) -> int:
    """Rotate KMS keys whose automatic rotation is due: ``RotateKey`` each."""

    def event(record: KeyRecord) -> dict[str, Any]:
        return build_service_event(
            time=deployment.clock.now(),
            event_source=KMS_SOURCE,
            event_name="RotateKey",
            account_id=record.account_id,
            region=record.region,
            invoked_by=KMS_INVOKER,
            resources=[record.arn],
            details={"rotationType": "AUTOMATIC", "keyId": record.key_id},
        )

    return _audited(deployment, deployment.keys.run_due_rotations, event)


def purge_function_logs(deployment: Deployment) -> int:
    """Delete the function invocation logs older than their log group's retention:
    ``DeleteLogStream`` each, as a service event."""
    functions = deployment.functions
    if functions is None:
        return 0

    def event(purged: PurgedLog) -> dict[str, Any]:
        group = purged.group
        return build_service_event(
            time=deployment.clock.now(),
            event_source=LOGS_SOURCE,
            event_name="DeleteLogStream",
            account_id=group.account_id,
            region=group.region,
            invoked_by=LOGS_SOURCE,
            resources=[f"{group.arn}:log-stream:{purged.stream}"],
            details={
                "logGroupName": group.name,
                "logStreamName": purged.stream,
                "retentionInDays": group.retention_days,
            },
        )

    return _audited(deployment, functions.log_groups.purge_expired, event)


def _audited(
    deployment: Deployment,
    job: Callable[[Observe[T]], int],
    describe: Callable[[T], dict[str, Any]],
) -> int:
    return audited(
        deployment.store,
        deployment.audit,
        lambda add: job(lambda record: add(describe(record))),
    )
