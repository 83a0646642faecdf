"""How long the web console takes to render its pages over a store of many secrets.

    .venv/bin/python -m bench.console_pages [--secrets 10000] [--repeat 20]

A dev data directory is created and bulk-seeded (bench/bulkseed.py) to ``--secrets``
secrets, a dev server serves it, a session signs in through the console's own sign-in
form (dev credentials), and each page is fetched ``--repeat`` times over HTTP. The
figure is the wall time of a whole GET (the page's AWS calls through the pipeline, their
audit records, the template), median and worst. Not part of the test suite: the numbers
depend on the machine, so report them with it.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from bench.bulkseed import bulk_seed
from bench.secretdata import secret_name
from bench.servers import ServerProcess, free_port
from strongroom.server.deployment import initialize

STRONGROOM = Path(sys.executable).with_name("strongroom")


class _Browser:
    """Keeps the console's cookies (Secure ones too: urllib's jar drops those over
    http://127.0.0.1, which browsers keep)."""

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_NoRedirect())

    def open(self, url: str, data: bytes | None = None) -> tuple[int, bytes]:
        request = urllib.request.Request(url, data=data)  # noqa: S310 - our own http://127.0.0.1 server
        request.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        try:
            answer = self._opener.open(request)
        except urllib.error.HTTPError as redirected:  # 3xx, with _NoRedirect
            answer = redirected
        with answer:
            for header in answer.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
            return answer.status, answer.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _sign_in(browser: _Browser, url: str) -> None:
    _status, page = browser.open(f"{url}/console/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.decode())
    assert csrf, "no CSRF field on the sign-in page"
    form = urllib.parse.urlencode(
        {
            "csrf": csrf.group(1),
            "mode": "keys",
            "access_key_id": "test",
            "secret_access_key": "test",
            "next": "/console",
        }
    ).encode()
    status, _body = browser.open(f"{url}/console/signin", data=form)
    assert status == 303, status


def _time(browser: _Browser, url: str, repeat: int) -> list[float]:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        status, body = browser.open(url)
        took.append((time.perf_counter() - started) * 1000)
        assert status == 200 and b"Strongroom console" in body, (url, status)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strongroom-console-bench-") as work:
        data_dir = Path(work) / "data"
        initialize(data_dir, dev=True)
        report = bulk_seed(data_dir, args.secrets)
        print(f"seeded {report.added:,} secrets in {report.seconds:.1f}s")
        port = free_port()
        server = ServerProcess(
            "strongroom",
            [str(STRONGROOM), "server", "--dev", "--data-dir", str(data_dir), "--port", str(port)],
            port,
            "/_strongroom/health",
            Path(work) / "server.log",
        )
        server.start()
        try:
            browser = _Browser()
            _sign_in(browser, server.url)
            middle = secret_name(args.secrets // 2)
            pages = {
                "secrets list, first 25 by name": "/console/",
                "secrets list, 100 by last changed": "/console/?sort=last-changed-date&size=100",
                "secrets list, search by name": f"/console/?filter=name&search={middle}",
                "secret page": f"/console/secret?id={urllib.parse.quote(middle)}",
                "store a new secret": "/console/secrets/new",
                "audit events": "/console/events",
            }
            print(f"{'page':<40} {'median ms':>10} {'max ms':>10}   ({args.secrets:,} secrets)")
            for label, path in pages.items():
                took = _time(browser, server.url + path, args.repeat)
                print(f"{label:<40} {statistics.median(took):>10.1f} {max(took):>10.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
