"""Server settings: flags, then ``STRONGROOM_*`` environment variables, then an
optional TOML file, then defaults (earlier wins)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from strongroom.audit.forward import Destination, HttpDestination, SyslogDestination
from strongroom.audit.log import AuditLogOptions
from strongroom.server.http import ConnectionLimits
from strongroom.store.cache import DEFAULT_CACHE_ENTRIES

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8420


@dataclass(frozen=True)
class Settings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    workers: int = 1
    data_dir: Path | None = None
    dev: bool = False
    log_level: str = "info"
    purge_interval: float = 60.0  # seconds between sweeps for expired deletion windows
    rotation_interval: float = 2.0  # seconds between looks for due rotations and event retries
    # Rows each worker keeps in memory per kind (secrets, their versions, keys, ...): about
    # 1.5 KiB per secret read. Reads of secrets beyond it go to the database.
    cache_entries: int = DEFAULT_CACHE_ENTRIES
    # The audit log (docs/audit-format.md): a new file past this size or age, a signed
    # digest this often (when anything was logged), whole files deleted after this many
    # days (unset: kept forever).
    audit_rotate_bytes: int = 64 * 1024 * 1024
    audit_rotate_seconds: float = 86400.0
    audit_digest_interval: float = 300.0
    audit_retention_days: float | None = None
    # Forward every audit record, from the log files and never on the request path, to a
    # SIEM over HTTP (ndjson POSTs) and/or to syslog (udp://host:port, tcp://host:port or
    # unix:///path): docs in README, "The audit trail".
    audit_forward_http: str | None = None
    audit_forward_syslog: str | None = None
    # What a client may take (docs/limits.md): seconds from its first byte to the end of
    # its request headers, and from there to the end of its body; connections a worker
    # keeps open at once.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    extra: Mapping[str, Any] = field(default_factory=dict)

    def audit_options(self) -> AuditLogOptions:
        return AuditLogOptions(
            rotate_bytes=self.audit_rotate_bytes,
            rotate_seconds=self.audit_rotate_seconds,
            digest_interval=self.audit_digest_interval,
            retention_days=self.audit_retention_days,
        )

    def endpoint(self) -> str:
        """Where this server is reached from the host itself: the address a function's
        process calls back on (AWS_ENDPOINT_URL)."""
        host = self.host
        if host in ("0.0.0.0", "", "::"):  # noqa: S104 - the wildcard, not a bind
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def connection_limits(self) -> ConnectionLimits:
        return ConnectionLimits(self.header_timeout, self.body_timeout, self.max_connections)

    def audit_destinations(self) -> list[Destination]:
        """Where audit records are forwarded; ValueError on an address of the wrong form."""
        found: list[Destination] = []
        if self.audit_forward_http:
            found.append(HttpDestination(self.audit_forward_http))
        if self.audit_forward_syslog:
            found.append(SyslogDestination(self.audit_forward_syslog))
        return found


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes", "on"}
    if kind == "str | None":
        return str(raw) if raw not in (None, "") else None
    if kind == "float | None":
        return float(raw) if raw not in (None, "") else None
    if kind == "Path | None":
        return Path(raw) if raw not in (None, "") else None
    return str(raw)


def load_settings(
    flags: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    environ = os.environ if environ is None else environ
    names = [f.name for f in fields(Settings) if f.name != "extra"]
    settings = Settings()
    path = config_file or (
        Path(environ["STRONGROOM_CONFIG"]) if "STRONGROOM_CONFIG" in environ else None
    )
    layers: list[Mapping[str, Any]] = []
    if path is not None:
        with path.open("rb") as handle:
            layers.append(tomllib.load(handle).get("server", {}))
    layers.append(
        {
            name: environ[f"STRONGROOM_{name.upper()}"]
            for name in names
            if f"STRONGROOM_{name.upper()}" in environ
        }
    )
    layers.append({name: value for name, value in flags.items() if value is not None})
    for layer in layers:
        unknown = set(layer) - set(names)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        settings = replace(settings, **{k: _coerce(k, v) for k, v in layer.items()})
    settings.audit_options()  # ValueError on a bad audit setting, before anything starts
    settings.audit_destinations()
    return settings
