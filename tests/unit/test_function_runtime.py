"""The function runtime's pieces (strongroom/functions/runtime.py): unpacking a package,
the log's framing, and a real invocation process run directly."""

from __future__ import annotations

import asyncio
import io
import json
import stat
import zipfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strongroom.clock import ManualClock, from_ms, to_ms
from strongroom.functions import runtime
from strongroom.functions.runtime import Launch, Runtime, unpack
from strongroom.protocol.errors import ServiceError


def zipped(files: dict[str, str], link: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["../escape.py", "/abs.py", "a/../../b.py"])
def test_unpack_refuses_paths_that_escape(tmp_path: Path, name: str) -> None:
    with pytest.raises(ServiceError) as refused:
        unpack(zipped({name: "x"}), tmp_path)
    assert refused.value.code == "InvalidParameterValueException"
    assert list(tmp_path.iterdir()) == []


def test_unpack_refuses_links_and_non_zips(tmp_path: Path) -> None:
    with pytest.raises(ServiceError):
        unpack(zipped({"a.py": "x"}, link="link"), tmp_path)
    with pytest.raises(ServiceError) as bad:
        unpack(b"not a zip", tmp_path)
    assert "Could not unzip uploaded file" in bad.value.message


def test_unpack_refuses_what_unzips_too_large(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "MAX_UNZIPPED_BYTES", 10)
    with pytest.raises(ServiceError) as refused:
        unpack(zipped({"big.py": "x" * 11}), tmp_path)
    assert "Unzipped size" in refused.value.message


def test_the_log_keeps_its_end() -> None:
    tail = runtime._Tail(8)
    tail.write(b"0123456789")
    tail.write(b"abc")
    assert tail.text() == "[5 earlier bytes of output dropped]\n56789abc"


def launch(code: bytes, **overrides: object) -> Launch:
    fields: dict[str, object] = {
        "request_id": "11111111-2222-3333-4444-555555555555",
        "function_arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "function_name": "f",
        "handler": "index.handler",
        "runtime": "python3.11",
        "timeout": 30,
        "memory_size": 128,
        "payload": b'{"n": 2}',
        "environment": {"GREETING": "hi"},
        "code": code,
    }
    fields.update(overrides)
    return Launch(**fields)  # type: ignore[arg-type]


def test_an_invocation_runs_the_handler_with_a_lambda_context(tmp_path: Path) -> None:
    code = zipped(
        {
            "index.py": (
                "import os\n"
                "def handler(event, context):\n"
                "    print('seen', event)\n"
                "    return {'double': event['n'] * 2, 'greeting': os.environ['GREETING'],\n"
                "            'request': context.aws_request_id,\n"
                "            'arn': context.invoked_function_arn,\n"
                "            'memory': context.memory_limit_in_mb,\n"
                "            'remaining': 0 < context.get_remaining_time_in_millis() <= 30000}\n"
            )
        }
    )
    outcome = asyncio.run(Runtime(tmp_path / "scratch").run(launch(code)))
    assert outcome.kind == "ok" and outcome.function_error is None
    assert json.loads(outcome.payload) == {
        "double": 4,
        "greeting": "hi",
        "request": "11111111-2222-3333-4444-555555555555",
        "arn": "arn:aws:lambda:us-east-1:000000000000:function:f",
        "memory": "128",
        "remaining": True,
    }
    lines = outcome.log.splitlines()
    assert lines[0] == "START RequestId: 11111111-2222-3333-4444-555555555555 Version: $LATEST"
    assert lines[1] == "seen {'n': 2}"
    assert lines[2] == "END RequestId: 11111111-2222-3333-4444-555555555555"
    assert lines[3].startswith("REPORT RequestId: 11111111-2222-3333-4444-555555555555\tDuration:")
    assert list((tmp_path / "scratch").iterdir()) == []  # the working directory is gone


def test_a_missing_handler_is_lambdas_error(tmp_path: Path) -> None:
    outcome = asyncio.run(Runtime(tmp_path).run(launch(zipped({"index.py": "x = 1\n"}))))
    assert outcome.function_error == "Unhandled"
    assert json.loads(outcome.payload)["errorType"] == "Runtime.HandlerNotFound"
    outcome = asyncio.run(Runtime(tmp_path).run(launch(zipped({"other.py": "x = 1\n"}))))
    assert json.loads(outcome.payload)["errorType"] == "Runtime.ImportModuleError"


def test_a_process_that_exits_is_a_runtime_exit_error(tmp_path: Path) -> None:
    code = zipped({"index.py": "import os\ndef handler(event, context):\n    os._exit(3)\n"})
    outcome = asyncio.run(Runtime(tmp_path).run(launch(code)))
    error = json.loads(outcome.payload)
    assert outcome.kind == "exit" and error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Runtime exited with error: exit status 3")


def test_without_a_sandbox_an_invocation_still_runs_in_a_group_of_its_own(tmp_path: Path) -> None:
    """Where user namespaces are not allowed: the same answer, the process group killed."""
    code = zipped(
        {
            "index.py": (
                "import os\ndef handler(event, context):\n    return os.getpgid(0) == os.getpid()\n"
            )
        }
    )
    outcome = asyncio.run(Runtime(tmp_path, sandbox=False, unsandboxed=True).run(launch(code)))
    assert outcome.kind == "ok" and json.loads(outcome.payload) is True


def test_without_a_sandbox_a_functions_own_code_is_not_run_unless_allowed(
    tmp_path: Path,
) -> None:
    """Fail closed: unsandboxed, a stored package would run as the server's user (the data
    directory, the root key of the file provider). Refused with a function error, and
    nothing is started; the built-ins' code (the server's own) still runs."""
    marker = tmp_path / "ran"
    code = zipped(
        {
            "index.py": (
                f"def handler(event, context):\n    open({str(marker)!r}, 'w').close()\n"
                "    return 'ran'\n"
            )
        }
    )
    refused = asyncio.run(Runtime(tmp_path / "scratch", sandbox=False).run(launch(code)))
    error = json.loads(refused.payload)
    assert (refused.kind, refused.function_error) == ("error", "Unhandled")
    assert error["errorType"] == "Runtime.SandboxUnavailable"
    assert "STRONGROOM_UNSANDBOXED_FUNCTIONS=1" in error["errorMessage"]
    assert "Runtime.SandboxUnavailable" in refused.log and refused.log.startswith("START")
    assert not marker.exists() and not (tmp_path / "scratch").exists()

    builtin = tmp_path / "builtin"
    builtin.mkdir()
    (builtin / "index.py").write_text(
        f"def handler(event, context):\n    open({str(marker)!r}, 'w').close()\n    return 1\n"
    )
    own = asyncio.run(
        Runtime(tmp_path / "scratch", sandbox=False).run(
            replace(launch(b""), code=None, code_dir=builtin)
        )
    )
    assert own.kind == "ok" and marker.exists()

    marker.unlink()
    allowed = Runtime(tmp_path / "scratch", sandbox=False, unsandboxed=True)
    assert json.loads(asyncio.run(allowed.run(launch(code))).payload) == "ran"
    assert marker.exists()


def test_the_sandbox_is_probed_once() -> None:
    prefix = runtime.sandbox_prefix()
    assert prefix is runtime.sandbox_prefix()
    if prefix is not None:
        assert Path(prefix[0]).name == "setpriv" and "--kill-child" in prefix


def test_a_response_past_six_megabytes_is_refused(tmp_path: Path) -> None:
    code = zipped({"index.py": "def handler(event, context):\n    return 'x' * 7_000_000\n"})
    outcome = asyncio.run(Runtime(tmp_path).run(launch(code, memory_size=256)))
    assert outcome.function_error == "Unhandled"
    assert json.loads(outcome.payload) == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }


def test_a_response_of_exactly_six_megabytes_is_answered_and_one_byte_more_is_not(
    tmp_path: Path,
) -> None:
    """Counted in bytes of the JSON answered (a string's quotes included), at the byte."""
    limit = runtime.MAX_RESPONSE_BYTES
    code = zipped({"index.py": "def handler(event, context):\n    return 'x' * event\n"})
    fits = asyncio.run(
        Runtime(tmp_path).run(launch(code, memory_size=256, payload=b"%d" % (limit - 2)))
    )
    assert fits.function_error is None and len(fits.payload) == limit
    over = asyncio.run(
        Runtime(tmp_path).run(launch(code, memory_size=256, payload=b"%d" % (limit - 1)))
    )
    assert over.function_error == "Unhandled"
    assert json.loads(over.payload)["errorType"] == "Function.ResponseSizeTooLarge"


def test_the_log_is_stamped_on_the_deployments_clock(tmp_path: Path) -> None:
    """The log's time is the injected clock's (what retention purges read), not the wall
    clock's; a timeout's line is stamped at its start plus the time it ran."""
    clock = ManualClock(datetime(2026, 3, 1, 20, 30, tzinfo=UTC))
    code = zipped({"index.py": "import time\ndef handler(event, context):\n    time.sleep(5)\n"})
    outcome = asyncio.run(Runtime(tmp_path, clock=clock).run(launch(code, timeout=1)))
    assert outcome.kind == "timeout"
    assert outcome.started_ms == to_ms(clock.now())
    stamped = from_ms(outcome.started_ms + outcome.duration_ms)
    (line,) = [line for line in outcome.log.splitlines() if "Task timed out" in line]
    assert line.startswith(stamped.strftime("%Y-%m-%dT%H:%M:%S."))
