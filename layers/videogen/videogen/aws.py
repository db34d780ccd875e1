"""boto3 clients, created on first use and reused for the life of the Lambda container.

Created lazily so that importing a handler costs nothing for the clients it does not use, and so
that tests and local mode can point AWS_ENDPOINT_URL at moto before the first call.
"""

from __future__ import annotations

import random
import time
from functools import cache
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError
from botocore.loaders import Loader, create_loader

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)


# SigV4 for presigned S3 URLs: required by KMS-encrypted objects and every region opened after 2014.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4"))


@cache
def _models() -> Loader:
    """One loader of botocore's service models for every client: each session would otherwise parse the
    same JSON files again (endpoints and each service's model: tens of milliseconds a client, and most of
    a test's set-up time). The models never change in a process."""
    return create_loader()


@cache
def client(service: str) -> Any:
    config = _S3_CONFIG if service == "s3" else _CONFIG
    # A session per client, as before (a session is not thread-safe), sharing the parsed models.
    core = botocore.session.get_session()
    core.register_component("data_loader", _models())
    return boto3.session.Session(botocore_session=core).client(service, config=config)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints between runs)."""
    client.cache_clear()


def cancellation_reasons(exc: ClientError) -> list[str]:
    """The per-item codes of a cancelled TransactWriteItems (``ConditionalCheckFailed``, ``None`` ...)."""
    return [str(r.get("Code")) for r in exc.response.get("CancellationReasons", [])]


def transact_write(items: list[dict[str, Any]], attempts: int = 8) -> None:
    """TransactWriteItems, tried again while it was cancelled only because another transaction held one of
    its items (a budget under a burst): nothing was written then, and botocore does not retry a cancelled
    transaction. Any other cancellation (a failed condition) or the last conflict is raised."""
    for attempt in range(attempts):
        try:
            client("dynamodb").transact_write_items(TransactItems=items)
            return
        except ClientError as exc:
            reasons = cancellation_reasons(exc)
            conflict_only = "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons
            if exc.response["Error"]["Code"] != "TransactionCanceledException" or not conflict_only:
                raise
            if attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0, 0.05 * 2**attempt))
