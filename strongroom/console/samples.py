"""Sample code for reading a secret, as the review page of "Store a new secret" shows it:
boto3, the AWS CLI and the AWS SDK for JavaScript (v3)."""

from __future__ import annotations

import json


def sample_code(name: str, region: str) -> dict[str, str]:
    quoted = json.dumps(name)  # a valid string literal in Python and JavaScript alike
    return {
        "Python (boto3)": f"""import boto3

client = boto3.client("secretsmanager", region_name={json.dumps(region)})
# Point the SDK at Strongroom with AWS_ENDPOINT_URL (or endpoint_url=...).
response = client.get_secret_value(SecretId={quoted})
secret = response["SecretString"]
""",
        "AWS CLI": (
            "aws secretsmanager get-secret-value \\\n"
            f"    --secret-id {_shell(name)} --region {_shell(region)} \\\n"
            "    --query SecretString --output text\n"
        ),
        "JavaScript (AWS SDK v3)": f"""import {{
  SecretsManagerClient,
  GetSecretValueCommand,
}} from "@aws-sdk/client-secrets-manager";

const client = new SecretsManagerClient({{ region: {json.dumps(region)} }});
const response = await client.send(
  new GetSecretValueCommand({{ SecretId: {quoted} }}),
);
const secret = response.SecretString;
""",
    }


def _shell(word: str) -> str:
    safe = all(c.isalnum() or c in "/_+=.@-" for c in word)
    return word if safe and word else "'" + word.replace("'", "'\\''") + "'"
