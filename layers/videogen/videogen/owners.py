"""Who owns a job: the principal a caller acts for, in namespaces that cannot be confused.

* **IAM callers** (the API, SigV4): an assumed role owns its jobs as the role, not as the session.
  ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`` → ``arn:aws:iam::ACCOUNT:role/ROLE``. The session name
  changes per ECS task, EC2 instance, CI run and botocore session, so keying on it would hide a service's
  jobs from its own next task. The assumed-role ARN does not carry the role's path, and role names are
  unique in an account, so the owner is the role ARN without its path (``normalize_owner`` turns a role ARN
  written with a path into that form). IAM users, the root user and federated users own as themselves.
* **The S3 door**: ``s3:<bucket>``. **The EventBridge door**: ``eventbridge:<account>:<source>``, where the
  account is the one EventBridge records as the event's sender (the putter cannot choose it) and ``source``
  is the putter's free text. **API-key tenants** (later): ``tenant:<name>``.

Every IAM principal starts with ``arn:``; no other namespace does, so a door's owner can never equal an IAM
principal, whatever ``source`` an event claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ASSUMED_ROLE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/.+$")
_ROLE = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<role>[^/]+)$")


@dataclass(frozen=True)
class Owner:
    """``id`` is what the job records as its owner (the ``caller`` attribute and its index); ``session`` the
    IAM session that acted, kept for audit."""

    id: str
    session: str | None = None


def normalize_owner(principal: str) -> str:
    """The owner a principal ARN stands for: an assumed-role session or a role ARN with a path → the role ARN
    without its path; anything else unchanged. Also how an operator's ``--owner`` is read."""
    if match := _ASSUMED_ROLE.match(principal) or _ROLE.match(principal):
        return f"arn:{match['partition']}:iam::{match['account']}:role/{match['role']}"
    return principal


def iam_owner(user_arn: str) -> Owner:
    """The owner of an API call authenticated by IAM (``requestContext.identity.userArn``)."""
    owner = normalize_owner(user_arn)
    return Owner(owner, user_arn if owner != user_arn else None)


def s3_owner(bucket: str) -> Owner:
    return Owner(f"s3:{bucket}")


def eventbridge_owner(account: str, source: str) -> Owner:
    return Owner(f"eventbridge:{account}:{source}")


def owns(owner: str, recorded: str) -> bool:
    """Whether ``owner`` owns a job recorded under ``recorded``. Jobs stored before ownership was keyed on
    roles carry the session ARN: they are read as their role's (migrate on read)."""
    return recorded == owner or (recorded.startswith("arn:") and normalize_owner(recorded) == owner)
