"""The function service: Lambda's control plane over the function tables, and invocation
through the isolated runtime (:mod:`strongroom.functions.runtime`).

It serves the ``lambda`` API (:mod:`strongroom.functions.api`) and, as
:class:`strongroom.types.Functions`, other services that invoke functions for a customer
(Secrets Manager's rotation). One class composed of one class per noun, as the other
services: :class:`FunctionControl` (``control.py``), :class:`FunctionPermissions`
(``permissions.py``) and :class:`Invocations` (``invocations.py``), over
:class:`FunctionsBase` (``base.py``).
"""

from __future__ import annotations

from strongroom.functions.base import builtin_policy, builtin_role_arn
from strongroom.functions.control import FunctionControl
from strongroom.functions.invocations import Invocations

__all__ = ["FunctionService", "builtin_policy", "builtin_role_arn"]


class FunctionService(FunctionControl, Invocations):
    """The ``lambda`` service and :class:`strongroom.types.Functions`."""
