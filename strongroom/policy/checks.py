"""What one authorization question is (:class:`Check`): services build these, the
authorizer answers them. The types live with the other shared types
(:mod:`strongroom.types`), so the protocol layer can name them without importing policy."""

from __future__ import annotations

from strongroom.types import Authorize, Check, ContextValues, allow_everything

__all__ = ["Authorize", "Check", "ContextValues", "allow_everything"]
