"""Which key `strongroom audit verify` checks digests with, and where it comes from: anchored
outside the audit directory when it can be (docs/audit-format.md, "Verification")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from strongroom.audit import integrity
from strongroom.audit.findings import DIGEST, Finding
from strongroom.audit.signing import fingerprint, read_public_key
from strongroom.audit.writers import WriterRow

# The one warning given when nothing outside the audit directory vouches for the key.
FALLBACK_WARNING = (
    "UNANCHORED: the digests were checked with {path}, the key stored beside the logs: "
    "anyone who can edit the audit directory can replace it and re-sign everything. Pass "
    "--fingerprint (recorded elsewhere), --endpoint (the server's ListPublicKeys) or "
    "--public-key (a copy kept elsewhere)."
)


@dataclass
class Anchor:
    """The keys (fingerprint -> key; None: none at all), where they came from, and what
    choosing them found (a replaced key file, a fingerprint that does not match)."""

    keys: dict[str, Ed25519PublicKey] | None
    source: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def fingerprint(self) -> str | None:
        return next(iter(self.keys)) if self.keys and len(self.keys) == 1 else None


def anchor_keys(
    audit_dir: Path,
    public_key: Ed25519PublicKey | None,
    trusted: dict[str, Ed25519PublicKey] | None,
    anchor: str | None,
    fingerprint_given: str | None,
    registry: list[WriterRow] | None,
) -> Anchor:
    """The keys digests are checked with, first found: ``trusted`` (e.g. the server's
    ListPublicKeys; ``anchor`` says where from), ``public_key`` (a copy kept somewhere
    safe), the ``registry``'s keys, else the ``signing-key.pub`` beside the logs (a loud
    warning). ``fingerprint_given`` (recorded outside) must be the key's fingerprint."""
    findings: list[Finding] = []
    key_path = audit_dir / integrity.PUBLIC_KEY_FILE
    beside: Ed25519PublicKey | None = None
    try:
        beside = read_public_key(key_path)
    except FileNotFoundError:
        pass
    except ValueError as problem:
        findings.append(Finding("error", "-", str(problem), rank=DIGEST))
    keys: dict[str, Ed25519PublicKey] | None = None
    if trusted is not None:
        keys, used = dict(trusted), anchor or "given keys"
    elif public_key is not None:
        keys, used = {fingerprint(public_key): public_key}, anchor or "the --public-key file"
    elif registry:
        keys = {
            row.fingerprint: Ed25519PublicKey.from_public_bytes(row.public_key) for row in registry
        }
        used = "the writer registry in the database"
    elif beside is not None:
        keys, used = {fingerprint(beside): beside}, f"{key_path} (beside the logs)"
        if fingerprint_given is None:
            findings.append(
                Finding("warning", "-", FALLBACK_WARNING.format(path=key_path), rank=DIGEST)
            )
    else:
        used = "none"
        if integrity.writers(audit_dir):
            findings.append(
                Finding("error", "-", f"no public key: {key_path} is missing", rank=DIGEST)
            )
    if fingerprint_given is not None and keys is not None:
        if fingerprint_given not in keys:
            findings.append(
                Finding(
                    "error",
                    "-",
                    f"the key from {used} has fingerprint "
                    f"{', '.join(sorted(keys))}, not the {fingerprint_given} given: "
                    "the key was replaced",
                    rank=DIGEST,
                )
            )
            keys = {}
        else:
            keys = {fingerprint_given: keys[fingerprint_given]}
            used += f", fingerprint {fingerprint_given[:16]}... confirmed"
    if beside is not None and keys and fingerprint(beside) not in keys:
        findings.append(
            Finding(
                "error",
                "-",
                f"{key_path} holds a key (fingerprint {fingerprint(beside)[:16]}...) that "
                f"{used} does not vouch for: the public key file was replaced",
                rank=DIGEST,
            )
        )
    return Anchor(keys, used, findings)
