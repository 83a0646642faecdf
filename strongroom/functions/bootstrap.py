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
    """Be killed when the server process that started this one dies (Linux). In the
    sandbox our parent is ``unshare --kill-child``, which ``setpriv --pdeathsig`` ties to
    the server the same way."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        return
    parent = os.environ.get("_STRONGROOM_PARENT")
    if parent is not None and str(os.getppid()) != parent:
        os._exit(1)  # the parent died before the request took effect


PR_SET_NO_NEW_PRIVS = 38
PR_CAPBSET_DROP = 24
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND = 32, 4096
_KEPT_FLAGS = {
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": 1024,
    "nodiratime": 2048,
    "relatime": 1 << 21,
}
_CAPABILITY_VERSION_3 = 0x20080522


def _mounts() -> list[tuple[str, int]]:
    """Every mount point of this mount namespace, with the flags a remount must keep."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # "\040" is a space
            flags = 0
            for option in fields[5].split(","):
                flags |= _KEPT_FLAGS.get(option, 0)
            found.append((point, flags))
    return found


def _confine() -> None:
    """In the sandbox the runtime starts us in (own user, mount and PID namespaces, with a
    /proc of our own): the working directory stays writable, every other mount becomes
    read-only, the paths the function must not see are covered by empty tmpfs, then every
    capability is given up for good (bounding set, then capset), so the function can
    neither undo any of it nor regain a capability by exec. Outside a sandbox there is
    nothing to do."""
    hide = os.environ.pop("_STRONGROOM_HIDE", None)
    if hide is None:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]

    def fail(what: str) -> None:
        os.write(2, f"sandbox: {what} (errno {ctypes.get_errno()})\n".encode())
        os._exit(70)

    workdir = os.getcwd()
    if libc.mount(workdir.encode(), workdir.encode(), None, MS_BIND, None) != 0:
        fail("could not keep the working directory writable")
    for point, flags in _mounts():
        if point == workdir:
            continue
        remount = MS_REMOUNT | MS_BIND | MS_RDONLY | flags
        if libc.mount(None, point.encode(), None, remount, None) != 0 and point == "/":
            fail("could not make the file system read-only")
    for path in hide.split("\n"):
        if path and os.path.isdir(path):
            flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
            if libc.mount(b"tmpfs", path.encode(), b"tmpfs", flags, b"size=4k,mode=000") != 0:
                fail(f"could not hide {path}")
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    for capability in range(64):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)  # EINVAL past the last one

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    nothing = (Data * 2)()
    if libc.capset(ctypes.byref(Header(_CAPABILITY_VERSION_3, 0)), nothing) != 0:
        fail("could not drop capabilities")


def main() -> int:
    _die_with_parent()
    os.environ.pop("_STRONGROOM_PARENT", None)
    _confine()
    result_path = os.environ.pop("_STRONGROOM_RESULT")
    event_path = os.environ.pop("_STRONGROOM_EVENT")
    handler_name = os.environ.get("_HANDLER", "")
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
