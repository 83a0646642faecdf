"""Replays of two unauthenticated attacks on a dev server (issue 17, items 1 and 3); not
part of `make test` or `make bench`:

    .venv/bin/python -m bench.attacks bodies   # many large unsigned bodies
    .venv/bin/python -m bench.attacks slow     # many clients trickling their requests

Each starts its own `strongroom server --dev`, reports the server's resident memory
(its whole process tree) and open connections before, during and after, and what the
server log grew by. The limits replayed against are docs/limits.md's.
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench import procs
from bench.servers import HOST, ServerProcess, free_port

MIB = 1024 * 1024
STRONGROOM = Path(sys.executable).with_name("strongroom")


def start(log_dir: Path, env: dict[str, str] | None = None) -> ServerProcess:
    port = free_port()
    server = ServerProcess(
        "strongroom",
        [str(STRONGROOM), "server", "--dev", "--port", str(port)],
        port,
        "/_strongroom/health",
        log_dir / "server.log",
        env=env or {},
    )
    server.start()
    return server


def rss_mib(server: ServerProcess) -> float:
    return procs.rss_bytes(server.pid) / MIB


def established(port: int) -> int:
    """Connections to ``port`` the kernel holds open (either side's view of it)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED, server side
                count += 1
    return count


# --- many large unsigned bodies ------------------------------------------------------------


def _post_large(port: int, size: int, chunked: bool, outcomes: Counter[str]) -> None:
    head = (
        f"POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        "X-Amz-Target: secretsmanager.CreateSecret\r\n"
        + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {size}\r\n")
        + "\r\n"
    ).encode()
    chunk = b"[" * MIB
    with socket.create_connection((HOST, port), timeout=60) as sock:
        try:
            sock.sendall(head)
            for _ in range(size // MIB):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server stopped reading: what the cap is for
        try:
            status = sock.recv(64).split(b" ", 2)[1].decode()
        except (OSError, IndexError):
            status = "closed"
    outcomes[status] += 1


def bodies(count: int, size_mib: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = start(Path(scratch))
        try:
            before = rss_mib(server)
            report = [f"server RSS before: {before:.1f} MiB"]
            for chunked in (False, True):
                outcomes: Counter[str] = Counter()
                peak = before
                threads = [
                    threading.Thread(
                        target=_post_large, args=(server.port, size_mib * MIB, chunked, outcomes)
                    )
                    for _ in range(count)
                ]
                started = time.monotonic()
                for thread in threads:
                    thread.start()
                while any(thread.is_alive() for thread in threads):
                    peak = max(peak, rss_mib(server))
                    time.sleep(0.05)
                elapsed = time.monotonic() - started
                time.sleep(2)  # what is still held once the attack is over
                kind = "chunked" if chunked else "Content-Length"
                report.append(
                    f"{count} x {size_mib} MiB unsigned bodies ({kind}): answers "
                    f"{dict(outcomes)} in {elapsed:.1f}s; RSS peak {peak:.1f} MiB, "
                    f"2 s later {rss_mib(server):.1f} MiB"
                )
            log = server.log_path.read_text(errors="replace")
            report.append(f"server log: {len(log)} bytes, {log.count('Traceback')} tracebacks")
        finally:
            server.stop()
    print("\n".join(report))


# --- many slow clients -----------------------------------------------------------------------


def slow(count: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        server = start(Path(scratch))
        try:
            log_before = server.log_path.stat().st_size
            before_rss, before_open = rss_mib(server), established(server.port)
            socks: list[socket.socket] = []
            for n in range(count):
                sock = socket.create_connection((HOST, server.port), timeout=10)
                # Half of them trickle headers, half a body after complete headers.
                sock.sendall(
                    b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: "
                    if n % 2
                    else b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"
                )
                sock.setblocking(False)
                socks.append(sock)
            opened_open, opened_rss = established(server.port), rss_mib(server)
            closed = 0
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                for sock in socks:
                    if sock.fileno() == -1:
                        continue
                    try:
                        sock.send(b"a")  # one byte per client per second
                        if sock.recv(4096) == b"":
                            raise ConnectionResetError
                    except BlockingIOError:
                        pass
                    except OSError:
                        sock.close()
                        closed += 1
                time.sleep(1)
            after_open, after_rss = established(server.port), rss_mib(server)
            for sock in socks:
                sock.close()
            log = server.log_path.read_text(errors="replace")[log_before:]
        finally:
            server.stop()
    print(
        "\n".join(
            [
                f"before: {before_open} open connections, RSS {before_rss:.1f} MiB",
                f"{count} slow clients connected: {opened_open} open, RSS {opened_rss:.1f} MiB",
                f"after {seconds:.0f} s of one byte a second each: {after_open} open "
                f"({closed} closed by the server), RSS {after_rss:.1f} MiB",
                f"server log grew {len(log)} bytes, {len(log.splitlines())} lines, "
                f"{log.count('Traceback')} tracebacks",
            ]
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="attack", required=True)
    flood = commands.add_parser("bodies", help="many large unsigned bodies")
    flood.add_argument("--count", type=int, default=30)
    flood.add_argument("--size-mib", type=int, default=16)
    trickle = commands.add_parser("slow", help="many clients trickling their requests")
    trickle.add_argument("--count", type=int, default=2000)
    trickle.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if args.attack == "bodies":
        bodies(args.count, args.size_mib)
    else:
        slow(args.count, args.seconds)


if __name__ == "__main__":
    main()
