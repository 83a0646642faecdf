"""What the pipeline needs to know about one AWS service we serve: the spec itself lives
with the other shared types (:mod:`strongroom.types`)."""

from __future__ import annotations

import re

from strongroom.types import CheckBuilder, Handler, ResourceFinder, ServiceSpec

__all__ = ["CheckBuilder", "Handler", "ResourceFinder", "ServiceSpec", "snake_case"]


def snake_case(operation: str) -> str:
    """``GetSecretValue`` -> ``get_secret_value``: the domain method serving an operation."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
