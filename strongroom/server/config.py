"""Server settings: flags, then ``STRONGROOM_*`` environment variables, then an
optional TOML file, then defaults (earlier wins)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

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
    extra: Mapping[str, Any] = field(default_factory=dict)


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(Settings)}[name]
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    if kind == "bool":
        return raw if isinstance(raw, bool) else str(raw).lower() in {"1", "true", "yes", "on"}
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
    return settings
