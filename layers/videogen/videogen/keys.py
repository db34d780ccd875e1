"""Tenant API keys for the OpenRouter-compatible routes: issued once, stored only as hashes.

A key reads ``vg_<key id>_<secret>``: the key id (16 hex digits) is public and is the item's key in the keys
table, so a key is found with one GetItem and revoked by its id; the secret (32 random bytes, base64url) is
stored only as its SHA-256. A secret of 256 random bits needs no salt or slow hash: nothing can be guessed
from its digest, and the comparison is constant-time. A key belongs to a tenant, the owner of the jobs it
makes (``tenant:<name>``, videogen.owners), or, when issued for one, to an IAM principal: a service whose
role calls ``/videos`` inside AWS and whose copy outside AWS holds a key is one owner, and its jobs read
through both APIs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from videogen.aws import client
from videogen.models import utcnow
from videogen.owners import normalize_owner

KEY_PREFIX = "vg_"
_KEY = re.compile(r"^vg_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_LABEL_CHARS = 200
_IAM_PRINCIPAL = re.compile(
    r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:(role|user|assumed-role|federated-user)/\S+$|^arn:aws[a-z-]*:iam::\d{12}:root$"
)


@dataclass(frozen=True)
class IssuedKey:
    """What ``keys create`` prints, once: the only time the key itself exists outside its caller."""

    key: str
    key_id: str
    tenant: str
    iam_owner: str | None = None

    def __repr__(self) -> str:  # a key must not reach a log line through a repr
        return f"IssuedKey(key_id={self.key_id!r}, tenant={self.tenant!r})"


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    tenant: str
    label: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    iam_owner: str | None = None  # the IAM principal the key acts for, if it was issued for one

    @property
    def owner(self) -> str:
        return self.iam_owner or tenant_owner(self.tenant)

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "label": self.label,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
            "owner": self.owner,
        }


def tenant_owner(tenant: str) -> str:
    return f"tenant:{tenant}"


def looks_like_key(value: str) -> bool:
    return _KEY.match(value) is not None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class ApiKeys:
    table: str

    def create(self, tenant: str, label: str | None = None, iam_owner: str | None = None) -> IssuedKey:
        """``iam_owner``: an IAM principal ARN (a role, a user) the key acts for instead of ``tenant:<tenant>``."""
        if not re.match(TENANT_PATTERN, tenant):
            raise ValueError("tenant: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
        if label is not None and len(label) > MAX_LABEL_CHARS:
            raise ValueError(f"label: at most {MAX_LABEL_CHARS} characters")
        if iam_owner is not None and not _IAM_PRINCIPAL.match(iam_owner):
            raise ValueError("owner: an IAM principal ARN, e.g. arn:aws:iam::123456789012:role/name")
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        item = {
            "key_id": {"S": key_id},
            "secret_sha256": {"S": _digest(secret)},
            "tenant": {"S": tenant},
            "created_at": {"S": utcnow()},
        }
        if label:
            item["label"] = {"S": label}
        if iam_owner is not None:
            item["iam_owner"] = {"S": normalize_owner(iam_owner)}
        client("dynamodb").put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(key_id)")
        return IssuedKey(
            f"{KEY_PREFIX}{key_id}_{secret}", key_id, tenant, normalize_owner(iam_owner) if iam_owner else None
        )

    def authenticate(self, key: str) -> KeyRecord | None:
        """The key's record if the key is well formed, known, matches and is not revoked; else None."""
        match = _KEY.match(key)
        if match is None:
            return None
        item = (
            client("dynamodb")
            .get_item(TableName=self.table, Key={"key_id": {"S": match["key_id"]}}, ConsistentRead=True)
            .get("Item")
        )
        if item is None or not hmac.compare_digest(item["secret_sha256"]["S"], _digest(match["secret"])):
            return None
        record = _record(item)
        if record.revoked_at is not None:
            return None
        self._touch(record.key_id)
        return record

    def list(self, tenant: str | None = None) -> list[KeyRecord]:
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        if tenant is not None:
            kwargs["FilterExpression"] = "tenant = :tenant"
            kwargs["ExpressionAttributeValues"] = {":tenant": {"S": tenant}}
        records = [
            _record(item)
            for page in client("dynamodb").get_paginator("scan").paginate(**kwargs)
            for item in page["Items"]
        ]
        return sorted(records, key=lambda r: (r.tenant, r.created_at))

    def revoke(self, key_id: str) -> KeyRecord | None:
        """Revoke a key (idempotent: the first revocation's time stays). None if there is no such key."""
        try:
            item = client("dynamodb").update_item(
                TableName=self.table,
                Key={"key_id": {"S": key_id}},
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :now)",
                ConditionExpression="attribute_exists(key_id)",
                ExpressionAttributeValues={":now": {"S": utcnow()}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _record(item)

    def _touch(self, key_id: str) -> None:
        # Best effort: a key in use must keep working while its last-used time cannot be written.
        with contextlib.suppress(ClientError):
            client("dynamodb").update_item(
                TableName=self.table,
                Key={"key_id": {"S": key_id}},
                UpdateExpression="SET last_used_at = :now",
                ExpressionAttributeValues={":now": {"S": utcnow()}},
            )


def _record(item: dict[str, Any]) -> KeyRecord:
    def text(name: str) -> str | None:
        value = item.get(name, {}).get("S")
        return str(value) if value is not None else None

    return KeyRecord(
        key_id=item["key_id"]["S"],
        tenant=item["tenant"]["S"],
        label=text("label"),
        created_at=item["created_at"]["S"],
        last_used_at=text("last_used_at"),
        revoked_at=text("revoked_at"),
        iam_owner=text("iam_owner"),
    )
