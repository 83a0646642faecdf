"""``strongroom functions``: what the function service ran.

``logs`` reads a function's invocation logs from a running server, through its
CloudWatch Logs subset (``FilterLogEvents`` on ``/aws/lambda/NAME``), signed with the
usual AWS credentials (environment, profile): the caller needs ``logs:FilterLogEvents``
on the log group, like any client. ``retention`` shows or sets how long they are kept
(``DescribeLogGroups``, ``PutRetentionPolicy``, ``DeleteRetentionPolicy``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import click
from rich.console import Console
from rich.text import Text

DEFAULT_ENDPOINT = "http://127.0.0.1:8420"


@click.group()
def functions() -> None:
    """Lambda-compatible functions: their invocation logs."""


@functions.command()
@click.argument("name")
@click.option(
    "--endpoint-url",
    default=None,
    help=f"The server [default: $AWS_ENDPOINT_URL, else {DEFAULT_ENDPOINT}].",
)
@click.option("--region", default=None, help="The Region [default: $AWS_REGION or us-east-1].")
@click.option("--filter", "pattern", default="", help="Only lines with every term given.")
@click.option("--limit", type=int, default=1000, show_default=True, help="At most this many lines.")
def logs(name: str, endpoint_url: str | None, region: str | None, pattern: str, limit: int) -> None:
    """Show the logs of function NAME's invocations (START ... END, REPORT), oldest first."""
    client = _client(endpoint_url, region)
    console = Console(highlight=False)
    events: list[dict[str, Any]] = []
    request: dict[str, Any] = {"logGroupName": f"/aws/lambda/{name}", "filterPattern": pattern}
    with _logs_errors(name):
        while len(events) < limit:
            page = client.filter_log_events(**request, limit=min(10_000, limit - len(events)))
            events.extend(page.get("events", []))
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    stream = None
    for event in events:
        if event["logStreamName"] != stream:
            stream = event["logStreamName"]
            console.rule(Text(stream, style="bold"))
        console.print(_styled(event["message"].rstrip("\n")))


@functions.command()
@click.argument("name")
@click.argument("days", type=int, required=False)
@click.option("--never", is_flag=True, help="Keep the logs forever (no retention policy).")
@click.option(
    "--endpoint-url",
    default=None,
    help=f"The server [default: $AWS_ENDPOINT_URL, else {DEFAULT_ENDPOINT}].",
)
@click.option("--region", default=None, help="The Region [default: $AWS_REGION or us-east-1].")
def retention(
    name: str, days: int | None, never: bool, endpoint_url: str | None, region: str | None
) -> None:
    """Show how long function NAME's invocation logs are kept, or set it to DAYS (one of
    CloudWatch Logs' values: 1, 3, 5, 7, 14, 30 ... 3653), or --never expire them."""
    if never and days is not None:
        raise click.UsageError("give DAYS or --never, not both")
    client = _client(endpoint_url, region)
    group = f"/aws/lambda/{name}"
    with _logs_errors(name):
        if never:
            client.delete_retention_policy(logGroupName=group)
        elif days is not None:
            client.put_retention_policy(logGroupName=group, retentionInDays=days)
        found = [
            g
            for g in client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
            if g["logGroupName"] == group
        ]
    if not found:
        raise click.ClickException(f"{name} has no invocation logs (yet).")
    kept = found[0].get("retentionInDays")
    click.echo(f"{group}: " + (f"{kept} days" if kept else "never expire"))


def _client(endpoint_url: str | None, region: str | None) -> Any:
    import boto3

    return boto3.client(
        "logs",
        endpoint_url=endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or DEFAULT_ENDPOINT,
        region_name=region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
    )


def _styled(line: str) -> Text:
    if line.startswith(("START ", "END ", "REPORT ")):
        return Text(line, style="dim")
    if line.startswith("[ERROR]") or "Task timed out" in line or line.startswith("Runtime."):
        return Text(line, style="bold red")
    return Text(line)


@contextlib.contextmanager
def _logs_errors(name: str) -> Iterator[None]:
    """What went wrong reading or setting function NAME's logs, as a one-line CLI error."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as failed:
        error = failed.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException":
            raise click.ClickException(f"{name} has no invocation logs (yet).") from None
        raise click.ClickException(f"{error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as failed:
        raise click.ClickException(str(failed)) from None
