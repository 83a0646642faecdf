"""The bootstrap an invocation's process runs, as Lambda's Python runtime interface does:
import the handler, call ``handler(event, context)`` once, hand back the result.

This file is run by path (``python -I bootstrap.py``) in the invocation's own working
directory, which holds the unpacked code; it imports nothing of Strongroom (the process is
not trusted). It reads the event from the file named by ``_STRONGROOM_EVENT`` and writes
one JSON document to the file named by ``_STRONGROOM_RESULT``: ``{"ok": result}``, or
``{"error": {"errorMessage", "errorType", "stackTrace"}}`` as Lambda reports a raised
exception. Whatever the function prints goes to stdout/stderr, which the runtime
captures as the invocation's log.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """What Lambda's Python runtime passes as ``context``."""

    def __init__(self, deadline_ms: int) -> None:
        self.aws_request_id = os.environ.get("_STRONGROOM_REQUEST_ID", "")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("_STRONGROOM_FUNCTION_ARN", "")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    frames = traceback.extract_tb(exc.__traceback__)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": os.environ.get("_STRONGROOM_REQUEST_ID", ""),
        "stackTrace": [
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n    {frame.line}\n'
            for frame in frames[1:]  # the bootstrap's own frame is not the function's
        ],
    }


def _load(handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{handler}': not enough values to unpack")
    module = importlib.import_module(module_name.replace("/", "."))
    return getattr(module, function_name)


def _die_with_parent() -> None:
    """Be killed when the server process that started this one dies (Linux)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != os.environ.get("_STRONGROOM_PARENT", str(os.getppid())):
        os._exit(1)  # the parent died before the request took effect


def main() -> int:
    _die_with_parent()
    os.environ.pop("_STRONGROOM_PARENT", None)
    result_path = os.environ.pop("_STRONGROOM_RESULT")
    event_path = os.environ.pop("_STRONGROOM_EVENT")
    handler_name = os.environ.pop("_HANDLER_NAME", os.environ.get("_HANDLER", ""))
    deadline_ms = int(os.environ.pop("_STRONGROOM_DEADLINE_MS"))
    memory = int(os.environ.pop("_STRONGROOM_MEMORY_MB")) * 1024 * 1024
    # Before any of the function's code runs: its memory size caps the address space; no
    # core file is ever written (it would hold the credentials in the environment).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    code_dir = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.path.insert(0, code_dir)
    with open(event_path, "rb") as handle:
        raw = handle.read()
    os.unlink(event_path)
    outcome: dict[str, Any]
    try:
        event = json.loads(raw) if raw.strip() else {}
        try:
            function = _load(handler_name)
        except Exception as exc:  # Lambda: Runtime.ImportModuleError / HandlerNotFound
            kind = (
                "Runtime.HandlerNotFound"
                if isinstance(exc, AttributeError)
                else "Runtime.ImportModuleError"
            )
            outcome = {
                "error": {
                    "errorMessage": f"Unable to import module '{handler_name.rpartition('.')[0]}'"
                    f": {exc}"
                    if kind == "Runtime.ImportModuleError"
                    else f"Handler '{handler_name.rpartition('.')[2]}' missing on module "
                    f"'{handler_name.rpartition('.')[0]}'",
                    "errorType": kind,
                    "requestId": os.environ.get("_STRONGROOM_REQUEST_ID", ""),
                    "stackTrace": [],
                }
            }
        else:
            value = function(event, LambdaContext(deadline_ms))
            outcome = {"ok": value}
    except Exception as exc:
        traceback.print_exc()
        outcome = {"error": _error(exc)}
    sys.stdout.flush()
    sys.stderr.flush()
    outcome["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        encoded = json.dumps(outcome)
    except (TypeError, ValueError) as exc:
        encoded = json.dumps(
            {
                "error": {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": os.environ.get("_STRONGROOM_REQUEST_ID", ""),
                    "stackTrace": [],
                }
            }
        )
    with open(result_path, "w", encoding="utf-8") as handle:
        handle.write(encoded)
    return 0


if __name__ == "__main__":
    sys.exit(main())
