"""Runs one invocation in a process of its own, which the server does not trust.

The process gets its own working directory (the unpacked zip, or a built-in's code
directory as ``LAMBDA_TASK_ROOT``), the server's Python (which has boto3, as Lambda's
Python runtimes do) in isolated mode, and an environment built from nothing: the
execution role's temporary credentials, the region, this server as the endpoint, Lambda's
variables and the function's own. Nothing of the server's environment is passed on.

Limits: the bootstrap (``bootstrap.py``, ours, run before any of the function's code)
caps the address space at the function's memory size (``RLIMIT_AS``) and disables core
files; the runtime kills the whole process group when the timeout passes and again when
the invocation ends, so nothing the function started outlives it. At most
``concurrency`` invocations run at once per worker; others wait their turn.

Output (stdout and stderr together) is the invocation's log, framed with Lambda's
``START``/``END``/``REPORT`` lines; only its last :data:`LOG_LIMIT` bytes are kept. Its
events are stamped on the deployment's clock (the one retention purges read: a test
clock in tests); durations and the timeout are measured on the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strongroom.clock import Clock, SystemClock, from_ms, now_ms
from strongroom.functions.common import MAX_UNZIPPED_BYTES, invalid_parameter

log = logging.getLogger("strongroom.functions")

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
LOG_LIMIT = 1024 * 1024  # bytes of output kept per invocation (its end)
TAIL_LIMIT = 4096  # bytes of log LogType=Tail returns, as Lambda
MAX_RESPONSE_BYTES = 6_291_556  # a synchronous invocation's response, as Lambda
DEFAULT_CONCURRENCY = 4
_CHUNK = 65536


@dataclass(frozen=True)
class Launch:
    """One invocation to run."""

    request_id: str
    function_arn: str
    function_name: str
    handler: str
    runtime: str
    timeout: int  # seconds
    memory_size: int  # MB
    payload: bytes
    environment: Mapping[str, str] = field(repr=False)  # everything the process sees
    code: bytes | None = field(default=None, repr=False)  # the zip; None: code_dir as is
    code_dir: Path | None = None


@dataclass(frozen=True)
class Outcome:
    """What an invocation produced."""

    payload: bytes  # the result as JSON, or Lambda's error document
    function_error: str | None  # "Unhandled", or None
    kind: str  # "ok", "error", "timeout", "memory", "exit"
    log: str  # START ... REPORT
    started_ms: int
    duration_ms: int
    request_id: str = ""

    @property
    def tail(self) -> str:
        data = self.log.encode()
        return data[-TAIL_LIMIT:].decode("utf-8", "replace")


def unpack(code: bytes, into: Path | None) -> None:
    """Extract a deployment package, refusing what could escape ``into`` or exhaust disk:
    absolute or ``..`` paths, links, more than :data:`MAX_UNZIPPED_BYTES` unzipped."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(code))
    except zipfile.BadZipFile:
        raise invalid_parameter(
            "Could not unzip uploaded file. Please check your file, then try to upload again."
        ) from None
    with archive:
        total = 0
        for info in archive.infolist():
            name = info.filename
            parts = Path(name).parts
            if name.startswith(("/", "\\")) or ".." in parts or ":" in name:
                raise invalid_parameter(f"Unzipped file name {name!r} is not allowed.")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise invalid_parameter(f"Unzipped file {name!r} is a link.")
            total += info.file_size
            if total > MAX_UNZIPPED_BYTES:
                raise invalid_parameter("Unzipped size must be smaller than 262144000 bytes")
        if into is not None:
            archive.extractall(into)


def check_package(code: bytes) -> None:
    """Refuse a package that would not unpack (at CreateFunction, UpdateFunctionCode)."""
    unpack(code, None)


SANDBOX = (
    ("setpriv", "--pdeathsig", "KILL", "--"),
    (
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "--",
    ),
)


@functools.cache
def sandbox_prefix() -> tuple[str, ...] | None:
    """The command an invocation runs under (util-linux ``setpriv`` and ``unshare``: own
    user, mount and PID namespaces, killed with the server), or None where the kernel or
    the tools do not allow it: then invocations run in a process group of their own only
    (docs/functions.md, "Isolation")."""
    prefix: list[str] = []
    for tool, *arguments in SANDBOX:
        found = shutil.which(tool)
        if found is None:
            return None
        prefix += [found, *arguments]
    try:
        probe = subprocess.run(  # noqa: S603 - our own fixed command
            [*prefix, sys.executable, "-I", "-c", "pass"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return tuple(prefix) if probe.returncode == 0 else None


UNSANDBOXED_VARIABLE = "STRONGROOM_UNSANDBOXED_FUNCTIONS"


def _no_sandbox() -> dict[str, Any]:
    return {
        "errorMessage": (
            "This server cannot sandbox function code here (unprivileged user namespaces, "
            "or util-linux's setpriv and unshare, are unavailable), so it does not run it: "
            "unsandboxed, it would run as the server's user. Enable user namespaces, or "
            f"set {UNSANDBOXED_VARIABLE}=1 to accept that (docs/functions.md, Isolation)."
        ),
        "errorType": "Runtime.SandboxUnavailable",
    }


class Runtime:
    """Runs invocations, each in a process of its own.

    ``sandbox``: run them under :func:`sandbox_prefix` where it is available.
    ``unsandboxed``: where it is not (or ``sandbox`` is off), still run a function's own
    code (a stored package) as the server's user. Off by default (fail closed): that code
    could read what the server's user can, the data directory and, with the ``file``
    provider, the root key. The built-in rotators' code is the server's own and runs
    either way."""

    def __init__(
        self,
        scratch: Path,
        concurrency: int = DEFAULT_CONCURRENCY,
        hidden: tuple[Path, ...] = (),
        sandbox: bool = True,
        clock: Clock | None = None,
        unsandboxed: bool = False,
    ) -> None:
        self._scratch = scratch
        self._clock = clock or SystemClock()
        self._slots = asyncio.Semaphore(concurrency)
        self._hidden = hidden
        self._sandbox = sandbox
        self._unsandboxed = unsandboxed
        self._warned = False
        self._running: set[int] = set()  # process groups of the invocations running

    async def run(self, launch: Launch) -> Outcome:
        async with self._slots:
            return await self._run(launch)

    async def _run(self, launch: Launch) -> Outcome:
        prefix = await asyncio.to_thread(sandbox_prefix) if self._sandbox else None
        started = time.time()
        started_ms = now_ms(self._clock)  # the log's time; the deadline is the real clock's
        if prefix is None and launch.code is not None and not self._unsandboxed:
            if not self._warned:
                self._warned = True
                log.warning(
                    "function code is not run: no sandbox is available on this host "
                    "(set %s=1 to run it as the server's user)",
                    UNSANDBOXED_VARIABLE,
                )
            refused = {"error": _no_sandbox()}
            return _outcome(launch, refused, None, False, _Tail(0), started_ms, 0)
        self._scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Write and search, no read: an invocation cannot list its siblings' directories.
        self._scratch.chmod(0o300)
        workdir = Path(tempfile.mkdtemp(prefix="invocation-", dir=self._scratch))
        try:
            task_root = launch.code_dir or workdir / "task"
            if launch.code is not None:
                task_root.mkdir(mode=0o700)
                await asyncio.to_thread(unpack, launch.code, task_root)
            event = workdir / "event.json"
            event.write_bytes(launch.payload)
            result = workdir / "result.json"
            env = {
                **launch.environment,
                "LAMBDA_TASK_ROOT": str(task_root),
                "_HANDLER": launch.handler,
                "HOME": str(workdir),
                "TMPDIR": str(workdir),
                "_STRONGROOM_EVENT": str(event),
                "_STRONGROOM_RESULT": str(result),
                "_STRONGROOM_REQUEST_ID": launch.request_id,
                "_STRONGROOM_FUNCTION_ARN": launch.function_arn,
                "_STRONGROOM_MEMORY_MB": str(launch.memory_size),
                "_STRONGROOM_DEADLINE_MS": str(int((started + launch.timeout) * 1000)),
            }
            if prefix is None:
                env["_STRONGROOM_PARENT"] = str(os.getpid())
            else:
                env["_STRONGROOM_HIDE"] = "\n".join(str(path) for path in self._hidden)
            process = await asyncio.create_subprocess_exec(
                *(prefix or ()),
                sys.executable,
                "-I",  # isolated: no PYTHON* variables, no user site, not the cwd on sys.path
                "-B",
                "-u",  # unbuffered, so what was printed before a kill is in the log
                str(BOOTSTRAP),
                cwd=str(workdir),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            self._running.add(process.pid)
            output = _Tail(LOG_LIMIT)
            reader = asyncio.create_task(_drain(process, output))
            timed_out = False
            try:
                await asyncio.wait_for(process.wait(), timeout=launch.timeout)
            except TimeoutError:
                timed_out = True
            finally:
                _kill_group(process.pid)
                await process.wait()
                self._running.discard(process.pid)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reader, timeout=5)
                reader.cancel()
            elapsed_ms = int((time.time() - started) * 1000)
            document = _read_result(result) if not timed_out else None
            return _outcome(
                launch, document, process.returncode, timed_out, output, started_ms, elapsed_ms
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    def kill_all(self) -> None:
        """Kill every invocation still running (the server is stopping)."""
        for group in list(self._running):
            _kill_group(group)


class _Tail:
    """The last ``limit`` bytes written, and how many came before them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
        self.data += chunk
        excess = len(self.data) - self.limit
        if excess > 0:
            del self.data[:excess]
            self.dropped += excess

    def text(self) -> str:
        text = self.data.decode("utf-8", "replace")
        if self.dropped:
            return f"[{self.dropped} earlier bytes of output dropped]\n{text}"
        return text


async def _drain(process: asyncio.subprocess.Process, into: _Tail) -> None:
    assert process.stdout is not None
    while True:
        chunk = await process.stdout.read(_CHUNK)
        if not chunk:
            return
        into.write(chunk)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_result(path: Path) -> dict[str, Any] | None:
    try:
        # Never read into the server: a file past the limit and its wrapper, {"ok": ...,
        # "maxrss_kb": N}. What it holds is measured exactly once read (_outcome).
        if path.stat().st_size > MAX_RESPONSE_BYTES + 64:
            return {"error": _too_large()}
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _stamp(ms: int) -> str:
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _outcome(
    launch: Launch,
    document: dict[str, Any] | None,
    returncode: int | None,
    timed_out: bool,
    output: _Tail,
    started_ms: int,
    elapsed_ms: int,
) -> Outcome:
    rid = launch.request_id
    # The result's bytes as answered, against the limit (_read_result only bounds the file).
    result = json.dumps(document["ok"]).encode() if document and "ok" in document else None
    if result is not None and len(result) > MAX_RESPONSE_BYTES:
        document, result = {"error": _too_large()}, None
    lines = [f"START RequestId: {rid} Version: $LATEST"]
    body = output.text()
    if body:
        lines.append(body.rstrip("\n"))
    function_error: str | None = "Unhandled"
    if timed_out:
        kind = "timeout"
        seconds = f"{launch.timeout:.2f}"
        lines.append(
            f"{_stamp(started_ms + elapsed_ms)} {rid} Task timed out after {seconds} seconds"
        )
        error: dict[str, Any] = {
            "errorMessage": f"RequestId: {rid} Error: Task timed out after {seconds} seconds",
            "errorType": "Sandbox.Timedout",
        }
    elif document is not None and "ok" in document:
        kind, function_error, error = "ok", None, {}
    elif document is not None and isinstance(document.get("error"), dict):
        error = document["error"]
        if error.get("errorType") == "MemoryError":
            kind = "memory"
            error = _out_of_memory(rid)
            lines.append(f"RequestId: {rid} Error: Runtime exited with error: signal: killed")
            lines.append("Runtime.OutOfMemory")
        else:
            kind = "error"
            lines.append(f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')}")
    else:
        # No result: the process died (killed by the kernel, or exited by itself).
        if returncode is not None and returncode < 0:
            cause = f"signal: {signal.Signals(-returncode).name.removeprefix('SIG').lower()}"
        else:
            cause = f"exit status {returncode}"
        kind = "memory" if returncode == -signal.SIGKILL else "exit"
        error = (
            _out_of_memory(rid)
            if kind == "memory"
            else {
                "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: {cause}",
                "errorType": "Runtime.ExitError",
            }
        )
        lines.append(f"RequestId: {rid} Error: Runtime exited with error: {cause}")
        lines.append(str(error["errorType"]))
    lines.append(f"END RequestId: {rid}")
    used = ""
    if document is not None and isinstance(document.get("maxrss_kb"), int):
        used = f"\tMax Memory Used: {max(1, document['maxrss_kb'] // 1024)} MB"
    lines.append(
        f"REPORT RequestId: {rid}\tDuration: {elapsed_ms:.2f} ms\t"
        f"Billed Duration: {max(1, elapsed_ms)} ms\tMemory Size: {launch.memory_size} MB{used}"
    )
    payload = result if kind == "ok" and result is not None else json.dumps(error).encode()
    return Outcome(
        payload,
        function_error,
        kind,
        "\n".join(lines) + "\n",
        started_ms,
        elapsed_ms,
        launch.request_id,
    )


def _too_large() -> dict[str, Any]:
    return {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        f"({MAX_RESPONSE_BYTES} bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def _out_of_memory(rid: str) -> dict[str, Any]:
    return {
        "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: signal: killed",
        "errorType": "Runtime.OutOfMemory",
    }
