"""The console's pure logic: where a sign-in may lead, the sample code's quoting, the values
the editors submit and the sign-in audit record. (The sign-in throttle:
tests/unit/test_sign_in_throttle.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from strongroom.audit.events import RequestFacts, sign_in_event
from strongroom.console.auth import _safe_next
from strongroom.console.samples import sample_code
from strongroom.console.secret_pages import rotation_rules, value_from
from strongroom.console.web import Form

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_sign_in_leads_only_to_console_paths() -> None:
    assert _safe_next("/console/secret?id=x") == "/console/secret?id=x"
    for target in ("https://evil.example/", "//evil.example/console", "/other", "", "/\\evil"):
        assert _safe_next(target) == "/console"


def test_sample_code_quotes_the_name() -> None:
    samples = sample_code('it\'s/a "name"', "eu-west-1")
    assert 'SecretId="it\'s/a \\"name\\""' in samples["Python (boto3)"]
    assert "--secret-id 'it'\\''s/a \"name\"'" in samples["AWS CLI"]
    assert sample_code("MyApp/DBCredentials", "us-east-1")["AWS CLI"].startswith(
        "aws secretsmanager get-secret-value \\\n    --secret-id MyApp/DBCredentials "
    )


def test_editors_values() -> None:
    pairs = Form([("kv_key", "user"), ("kv_value", "u"), ("kv_key", " "), ("kv_value", "x")])
    assert json.loads(value_from(pairs)) == {"user": "u"}
    assert value_from(Form([("editor", "plaintext"), ("plaintext", "raw")])) == "raw"
    assert rotation_rules(Form([("rotation_days", "30"), ("rotation_window", "3h")])) == {
        "AutomaticallyAfterDays": 30,
        "Duration": "3h",
    }
    assert rotation_rules(Form([("schedule_expression", "rate(4 hours)")])) == {
        "ScheduleExpression": "rate(4 hours)"
    }


def test_sign_in_event_is_cloudtrails_shape() -> None:
    facts = RequestFacts("r", NOW, "10.0.0.1", "Mozilla/5.0", "us-east-1")
    identity = {"type": "IAMUser", "accountId": "111122223333", "userName": "bob"}
    failed = sign_in_event(
        facts=facts, event_name="ConsoleLogin", identity=identity,
        error_message="Failed authentication",
    )  # fmt: skip
    assert failed["eventSource"] == "signin.amazonaws.com"
    assert failed["eventType"] == "AwsConsoleSignIn"
    assert failed["responseElements"] == {"ConsoleLogin": "Failure"}
    assert failed["errorMessage"] == "Failed authentication"
    assert failed["recipientAccountId"] == "111122223333"
    ok = sign_in_event(
        facts=facts, event_name="ConsoleLogin", identity=identity, error_message=None
    )
    assert ok["responseElements"] == {"ConsoleLogin": "Success"} and "errorMessage" not in ok
