"""A MySQL single-user rotation function written for AWS Lambda, in the shape of AWS's
published templates: PyMySQL bundled in the zip, ``lambda_function.lambda_handler``, the
Secrets Manager endpoint from ``SECRETS_MANAGER_ENDPOINT``, the role's credentials from the
environment. Nothing in it knows Strongroom: tests/e2e/test_builtin_rotation_service.py
uploads it as ``lambda_function.py`` in a zip and rotates a MariaDB user's secret with it.
"""

import json
import logging
import os

import boto3
import pymysql

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def lambda_handler(event, context):
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]
    client = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])

    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise ValueError(f"Secret {arn} is not enabled for rotation")
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError(f"Secret version {token} has no stage for rotation of secret {arn}.")
    if "AWSCURRENT" in versions[token]:
        logger.info("Secret version %s already set as AWSCURRENT for secret %s.", token, arn)
        return
    if "AWSPENDING" not in versions[token]:
        raise ValueError(f"Secret version {token} not set as AWSPENDING for rotation of {arn}.")

    if step == "createSecret":
        create_secret(client, arn, token)
    elif step == "setSecret":
        set_secret(client, arn, token)
    elif step == "testSecret":
        test_secret(client, arn, token)
    elif step == "finishSecret":
        finish_secret(client, arn, token)
    else:
        raise ValueError(f"Invalid step parameter {step} for secret {arn}")


def create_secret(client, arn, token):
    current = secret_dict(client, arn, "AWSCURRENT")
    try:
        secret_dict(client, arn, "AWSPENDING", token)
        logger.info("createSecret: the pending secret of %s exists", arn)
    except client.exceptions.ResourceNotFoundException:
        current["password"] = client.get_random_password(
            ExcludeCharacters=os.environ.get("EXCLUDE_CHARACTERS", ":/@\"'\\")
        )["RandomPassword"]
        client.put_secret_value(
            SecretId=arn,
            ClientRequestToken=token,
            SecretString=json.dumps(current),
            VersionStages=["AWSPENDING"],
        )
        logger.info("createSecret: put the pending secret of %s, version %s", arn, token)


def set_secret(client, arn, token):
    current = secret_dict(client, arn, "AWSCURRENT")
    pending = secret_dict(client, arn, "AWSPENDING", token)
    conn = connect(pending)
    if conn:
        conn.close()
        logger.info("setSecret: the pending password is set already for %s", arn)
        return
    if current["username"] != pending["username"] or current["host"] != pending["host"]:
        raise ValueError("the pending secret names another user or host than the current one")
    conn = connect(current)
    if not conn:
        try:
            previous = secret_dict(client, arn, "AWSPREVIOUS")
        except client.exceptions.ResourceNotFoundException:
            previous = None
        conn = connect(previous) if previous else None
    if not conn:
        raise ValueError("Unable to log into database with previous, current, or pending secret")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]
            if "mariadb" in version.lower():
                cur.execute("SET PASSWORD = PASSWORD(%s)", (pending["password"],))
            else:
                cur.execute("ALTER USER USER() IDENTIFIED BY %s", (pending["password"],))
        conn.commit()
        logger.info("setSecret: set the password of %s", pending["username"])
    finally:
        conn.close()


def test_secret(client, arn, token):
    conn = connect(secret_dict(client, arn, "AWSPENDING", token))
    if not conn:
        raise ValueError(f"Unable to log into database with pending secret of secret ARN {arn}")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT NOW()")
    finally:
        conn.close()


def finish_secret(client, arn, token):
    metadata = client.describe_secret(SecretId=arn)
    current_version = None
    for version, stages in metadata["VersionIdsToStages"].items():
        if "AWSCURRENT" in stages:
            if version == token:
                return
            current_version = version
            break
    client.update_secret_version_stage(
        SecretId=arn,
        VersionStage="AWSCURRENT",
        MoveToVersionId=token,
        RemoveFromVersionId=current_version,
    )
    logger.info("finishSecret: version %s of %s is AWSCURRENT", token, arn)


def connect(secret):
    try:
        return pymysql.connect(
            host=secret["host"],
            user=secret["username"],
            password=secret["password"],
            port=int(secret.get("port", 3306)),
            database=secret.get("dbname"),
            connect_timeout=5,
        )
    except pymysql.OperationalError:
        return None


def secret_dict(client, arn, stage, token=None):
    if token:
        answer = client.get_secret_value(SecretId=arn, VersionId=token, VersionStage=stage)
    else:
        answer = client.get_secret_value(SecretId=arn, VersionStage=stage)
    secret = json.loads(answer["SecretString"])
    if secret.get("engine") not in ("mysql", "mariadb"):
        raise KeyError(
            "Database engine must be set to 'mysql' in order to use this rotation lambda"
        )
    for field in ("host", "username", "password"):
        if field not in secret:
            raise KeyError(f"{field} key is missing from secret JSON")
    return secret
