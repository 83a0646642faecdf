"""The deployment-wide actions of the operator endpoints (seal, unseal): what they are
authorized on and how they are signed and audited. Pipeline.authorize_operator takes them
through the pipeline's stages (docs/architecture.md, "The keyholder and the seal")."""

from __future__ import annotations

from dataclasses import dataclass

SIGNING_NAME = "strongroom"  # the SigV4 service operator requests are signed for
EVENT_SOURCE = "strongroom"  # their audit events' eventSource


def deployment_arn(management_account: str) -> str:
    """The resource ``strongroom:Seal`` and ``strongroom:Unseal`` are authorized on."""
    return f"arn:aws:strongroom::{management_account}:deployment"


@dataclass(frozen=True)
class OperatorAction:
    """A deployment-wide action of the operator endpoints."""

    name: str  # "Seal": the IAM action strongroom:Seal and the audit event's name
    unaudited_ok: bool = False  # go ahead even when its audit record cannot be written


SEAL = OperatorAction("Seal", unaudited_ok=True)  # sealing protects: a full disk must not stop it
UNSEAL = OperatorAction("Unseal")
