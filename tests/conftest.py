"""Shared fixtures: AWS credentials that can never reach a real account, scripted HTTP servers, moto."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Set before anything imports boto3: tests must never talk to a real AWS account.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "videogen",
        "POWERTOOLS_SERVICE_NAME": "videogen",
        "POWERTOOLS_DEV": "false",
    }
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

from hypothesis import settings

from tests.support.scripted_http import ScriptedServer

# Property tests check behaviour, not speed: on a loaded 2-core runner one example can take longer than
# hypothesis' default 200 ms deadline, which fails the test for no fault of the code.
settings.register_profile("videogen", deadline=None)
settings.load_profile("videogen")

TEST_KEY = "sk-or-v1-test-key-that-must-never-leak-0123456789"


@pytest.fixture
def api_server() -> Iterator[ScriptedServer]:
    """Stands in for openrouter.ai (127.0.0.1)."""
    with ScriptedServer("127.0.0.1") as server:
        yield server


@pytest.fixture
def foreign_server() -> Iterator[ScriptedServer]:
    """Stands in for a storage host of unsigned_urls (127.0.0.2: another host, must never see the key)."""
    with ScriptedServer("127.0.0.2") as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    from videogen.aws import reset_clients
    from videogen.services import reset_services

    reset_clients()
    reset_services()
    yield
    reset_clients()
    reset_services()


@pytest.fixture
def aws() -> Iterator[None]:
    """Embedded AWS (moto) with the service's table and bucket."""
    from moto import mock_aws

    from videogen.aws import client
    from videogen_local.localmode.patches import serialize_dynamodb_writes
    from videogen_local.localmode.stack import create_batches_table, create_jobs_table

    serialize_dynamodb_writes()  # DynamoDB's conditional writes are atomic; moto's are not without it
    with mock_aws():
        create_jobs_table(client("dynamodb"), "videogen-jobs")
        create_batches_table(client("dynamodb"), "videogen-batches")
        client("s3").create_bucket(Bucket="videogen-bucket")
        yield
