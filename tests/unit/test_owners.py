"""Owners: an assumed role owns as the role, whatever the session; door owners never equal a principal."""

from __future__ import annotations

import pytest

from videogen.owners import Owner, eventbridge_owner, iam_owner, normalize_owner, owns, s3_owner

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/catalog-renderer"


@pytest.mark.parametrize(
    "session",
    [
        f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-renderer/ecs-task-4f1c",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-renderer/i-0123456789abcdef0",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-renderer/botocore-session-1764650000",
        f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-renderer/alice@example.com",  # IAM Identity Center
    ],
)
def test_every_session_of_a_role_is_owned_by_the_role(session: str) -> None:
    assert iam_owner(session) == Owner(ROLE, session)


def test_two_roles_are_two_owners() -> None:
    other = iam_owner(f"arn:aws:sts::{ACCOUNT}:assumed-role/billing/ecs-task-4f1c")
    assert other.id == f"arn:aws:iam::{ACCOUNT}:role/billing" != ROLE


@pytest.mark.parametrize(
    "principal",
    [
        f"arn:aws:iam::{ACCOUNT}:user/alice",
        f"arn:aws:iam::{ACCOUNT}:user/team/alice",
        f"arn:aws:iam::{ACCOUNT}:root",
        f"arn:aws:sts::{ACCOUNT}:federated-user/alice",
    ],
)
def test_users_root_and_federated_users_own_as_themselves(principal: str) -> None:
    assert iam_owner(principal) == Owner(principal, None)


def test_a_role_written_with_its_path_is_the_same_owner() -> None:
    # The assumed-role ARN has no path; role names are unique in an account.
    assert normalize_owner(f"arn:aws:iam::{ACCOUNT}:role/service-role/team/catalog-renderer") == ROLE
    assert normalize_owner("arn:aws-cn:sts::123456789012:assumed-role/r/s") == "arn:aws-cn:iam::123456789012:role/r"


def test_jobs_stored_under_a_session_are_read_as_the_roles() -> None:
    legacy = f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-renderer/ci-run-17"
    assert owns(ROLE, legacy) and owns(ROLE, ROLE)
    assert not owns(f"arn:aws:iam::{ACCOUNT}:role/billing", legacy)


def test_door_owners_live_in_their_own_namespaces() -> None:
    forged = eventbridge_owner(ACCOUNT, f"arn:aws:iam::{ACCOUNT}:user/alice")
    assert forged.id == f"eventbridge:{ACCOUNT}:arn:aws:iam::{ACCOUNT}:user/alice"
    assert not owns(f"arn:aws:iam::{ACCOUNT}:user/alice", forged.id)
    assert s3_owner("videogen-bucket").id == "s3:videogen-bucket"
    assert not owns(ROLE, s3_owner(ROLE).id)
