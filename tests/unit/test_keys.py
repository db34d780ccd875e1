"""Tenant API keys on moto: issued once, stored as digests, found by id, revoked for good."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from videogen.aws import client
from videogen.keys import ApiKeys, looks_like_key

TABLE = "videogen-keys"


@pytest.fixture
def keys(aws: None) -> Iterator[ApiKeys]:
    from videogen_local.localmode.stack import create_keys_table

    create_keys_table(client("dynamodb"), TABLE)
    yield ApiKeys(TABLE)


def test_a_key_authenticates_as_its_tenant_and_is_stored_only_as_a_digest(keys: ApiKeys) -> None:
    issued = keys.create("acme", "ci")
    assert looks_like_key(issued.key) and issued.key.startswith(f"vg_{issued.key_id}_") and issued.tenant == "acme"
    record = keys.authenticate(issued.key)
    assert record is not None and record.tenant == "acme" and record.owner == "tenant:acme" and record.label == "ci"
    [item] = client("dynamodb").scan(TableName=TABLE)["Items"]
    stored = json.dumps(item)
    assert issued.key not in stored and issued.key[len("vg_") + 17 :] not in stored
    assert "last_used_at" in item  # stamped by the authentication
    assert issued.key not in repr(issued)


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "vg_",
        "sk-or-v1-0123456789",
        "vg_0123456789abcdef_tooshort",
        "vg_0123456789abcdef_" + "A" * 43,  # well formed, unknown id
    ],
)
def test_malformed_and_unknown_keys_are_refused(keys: ApiKeys, presented: str) -> None:
    keys.create("acme")
    assert keys.authenticate(presented) is None


def test_a_wrong_secret_for_a_known_id_is_refused(keys: ApiKeys) -> None:
    issued = keys.create("acme")
    forged = f"vg_{issued.key_id}_" + ("B" * 43 if not issued.key.endswith("B" * 43) else "C" * 43)
    assert keys.authenticate(forged) is None


def test_revoked_keys_stop_working_and_revoking_is_idempotent(keys: ApiKeys) -> None:
    issued = keys.create("acme")
    first = keys.revoke(issued.key_id)
    assert first is not None and first.revoked_at is not None
    assert keys.authenticate(issued.key) is None
    again = keys.revoke(issued.key_id)
    assert again is not None and again.revoked_at == first.revoked_at
    assert keys.revoke("0000000000000000") is None


def test_listing_by_tenant_never_shows_a_key(keys: ApiKeys) -> None:
    a, b = keys.create("acme", "one"), keys.create("globex")
    listed = keys.list()
    assert [r.key_id for r in listed] == [a.key_id, b.key_id]
    assert [r.public()["tenant"] for r in keys.list("globex")] == ["globex"]
    assert a.key not in json.dumps([r.public() for r in listed])


@pytest.mark.parametrize("tenant", ["", "-x", "a b", "x" * 65, "tenant:acme"])
def test_tenant_names_are_plain(keys: ApiKeys, tenant: str) -> None:
    with pytest.raises(ValueError, match="tenant"):
        keys.create(tenant)


def test_a_key_issued_for_an_iam_role_acts_as_the_role(keys: ApiKeys) -> None:
    issued = keys.create("renderer-outside-aws", iam_owner="arn:aws:iam::123456789012:role/service-role/renderer")
    assert issued.iam_owner == "arn:aws:iam::123456789012:role/renderer"  # as the API records the role
    record = keys.authenticate(issued.key)
    assert record is not None and record.owner == "arn:aws:iam::123456789012:role/renderer"
    with pytest.raises(ValueError, match="owner"):
        keys.create("x", iam_owner="tenant:acme")


# ------------------------------------------------------------------ `videogen keys --stack NAME`


def _stack(name: str, outputs: dict[str, str]) -> None:
    # moto's CloudFormation: a stack whose only point is its outputs (CloudFormation needs one resource).
    template = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_keys_with_stack_find_the_table_from_the_stacks_keys_table_name_output(
    keys: ApiKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    from videogen_local.main import main

    _stack("videogen-prod", {"KeysTableName": TABLE, "ApiUrl": "https://x.example/v1"})
    assert main(["keys", "create", "--tenant", "acme", "--stack", "videogen-prod"]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert issued["tenant"] == "acme" and keys.authenticate(issued["key"]) is not None  # in the stack's table
    assert main(["keys", "list", "--stack", "videogen-prod"]) == 0
    assert [k["key_id"] for k in json.loads(capsys.readouterr().out)] == [issued["key_id"]]


def test_a_stack_without_the_output_is_a_clear_error(keys: ApiKeys) -> None:
    from videogen_local.main import main

    _stack("videogen-old", {"ApiUrl": "https://x.example/v1"})
    with pytest.raises(SystemExit, match=r"^stack videogen-old has no KeysTableName output \(deployed before"):
        main(["keys", "list", "--stack", "videogen-old"])
