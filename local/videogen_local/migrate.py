"""`videogen migrate-owners`: move jobs recorded under an IAM session ARN to their role.

Owners used to be the caller's ``userArn``, which for an assumed role names the session. Reads already
treat such a job as its role's (videogen.owners.owns), but the caller's listing reads the ``by_caller``
index under the owner, where these jobs are not: this rewrites each one's owner once (a conditional write,
so running it twice or beside live traffic is safe) and keeps the session as ``caller_session``.
"""

from __future__ import annotations

import os
from typing import Any


def migrate_owners(table: str, *, endpoint_url: str | None = None) -> dict[str, int]:
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url  # read by every client the core package makes
    from videogen.aws import client, reset_clients
    from videogen.jobs import JobStore
    from videogen.owners import normalize_owner

    if endpoint_url:
        reset_clients()
    store = JobStore(table)
    scanned = migrated = 0
    pages = (
        client("dynamodb")
        .get_paginator("scan")
        .paginate(
            TableName=table,
            ProjectionExpression="id, caller",
            FilterExpression="begins_with(caller, :sts) AND contains(caller, :assumed)",
            ExpressionAttributeValues={":sts": {"S": "arn:"}, ":assumed": {"S": ":assumed-role/"}},
        )
    )
    for page in pages:
        items: list[dict[str, Any]] = page["Items"]
        for item in items:
            scanned += 1
            recorded = item["caller"]["S"]
            migrated += store.migrate_owner(item["id"]["S"], recorded, normalize_owner(recorded))
    return {"scanned": scanned, "migrated": migrated}
