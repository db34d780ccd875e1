"""The API door: owners keyed on the role, not the session; Idempotency-Key; the operator's read."""

from __future__ import annotations

import copy
import json
import threading
from typing import Any

import pytest

from tests.handlers.conftest import Env
from tests.handlers.test_api import request
from tests.support.handlers import invoke, sample_event
from videogen.aws import client
from videogen.intake import RequestIdentity, accept
from videogen.jobs import JobStore
from videogen.models import Door, Job, JobStatus, VideoRequest
from videogen.owners import Owner
from videogen.services import get_services

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/catalog-renderer"
TASK_1 = f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-renderer/ecs-task-1"
TASK_2 = f"arn:aws:sts::{ACCOUNT}:assumed-role/catalog-renderer/ecs-task-2"
BILLING = f"arn:aws:sts::{ACCOUNT}:assumed-role/billing/ecs-task-1"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"


def post_as(caller: str, body: Any, key: str | None = None) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_post_videos"))
    event["requestContext"]["identity"]["userArn"] = caller
    event["body"] = json.dumps(body)
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    response: dict[str, Any] = invoke("api", event)
    return response


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response["body"])
    return body


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header as API Gateway sends it (a REST proxy response may carry either form)."""
    values = response.get("multiValueHeaders", {}).get(name) or [response.get("headers", {}).get(name)]
    value: str | None = values[-1]
    return value


def job_count() -> int:
    count: int = client("dynamodb").scan(TableName="videogen-jobs", Select="COUNT")["Count"]
    return count


def test_two_sessions_of_one_role_are_one_owner(env: Env) -> None:
    job_id = body_of(post_as(TASK_1, {"prompt": "made by task 1"}))["id"]
    seen = request("GET", f"/videos/{job_id}", TASK_2)
    assert seen["statusCode"] == 200
    job = body_of(seen)
    assert job["caller"] == ROLE and job["caller_session"] == TASK_1
    assert [item["id"] for item in body_of(request("GET", "/videos", TASK_2))["items"]] == [job_id]
    assert request("DELETE", f"/videos/{job_id}", TASK_2)["statusCode"] == 200


def test_two_roles_and_a_user_are_different_owners(env: Env) -> None:
    job_id = body_of(post_as(TASK_1, {"prompt": "renderer's"}))["id"]
    for stranger in (BILLING, ALICE):
        assert request("GET", f"/videos/{job_id}", stranger)["statusCode"] == 404
        assert request("DELETE", f"/videos/{job_id}", stranger)["statusCode"] == 404
        assert body_of(request("GET", "/videos", stranger))["items"] == []
    user_job = body_of(post_as(ALICE, {"prompt": "alice's"}))["id"]
    job = body_of(request("GET", f"/videos/{user_job}", ALICE))
    assert job["caller"] == ALICE and job["caller_session"] is None


def test_a_job_stored_under_a_session_is_still_the_roles(env: Env) -> None:
    # Before owners were keyed on roles, the session ARN was recorded as the caller.
    JobStore("videogen-jobs").create(
        Job(
            id="legacy0000000000000000000000000",
            status=JobStatus.QUEUED,
            request=VideoRequest(prompt="old"),
            caller=TASK_1,
        )
    )
    assert request("GET", "/videos/legacy0000000000000000000000000", TASK_2)["statusCode"] == 200
    assert request("GET", "/videos/legacy0000000000000000000000000", BILLING)["statusCode"] == 404
    # Listing reads the owner's index: `videogen migrate-owners` moves such jobs there.
    from videogen_local.migrate import migrate_owners

    assert migrate_owners("videogen-jobs") == {"scanned": 1, "migrated": 1}
    [item] = body_of(request("GET", "/videos", TASK_2))["items"]
    assert item["caller"] == ROLE and item["caller_session"] == TASK_1
    assert migrate_owners("videogen-jobs") == {"scanned": 0, "migrated": 0}  # nothing left under a session


def test_the_same_idempotency_key_and_body_answer_with_the_first_job(env: Env) -> None:
    first = post_as(TASK_1, {"prompt": "once"}, key="order-42")
    again = post_as(TASK_2, {"prompt": "once"}, key="order-42")  # the role's next task retries
    assert first["statusCode"] == again["statusCode"] == 202
    assert body_of(again) == body_of(first)
    assert header(again, "Idempotent-Replayed") == "true" and header(first, "Idempotent-Replayed") is None
    assert header(again, "Location") == header(first, "Location") == f"/v1/videos/{body_of(first)['id']}"
    assert job_count() == 1
    # The same JSON spelled differently is the same request.
    spelled = post_as(TASK_1, {"prompt": "once", "model": "bytedance/seedance-2.0-fast"}, key="order-42")
    assert body_of(spelled)["id"] == body_of(first)["id"]


def test_the_same_key_with_another_body_is_422(env: Env) -> None:
    first_id = body_of(post_as(TASK_1, {"prompt": "once"}, key="order-42"))["id"]
    other = post_as(TASK_1, {"prompt": "twice"}, key="order-42")
    assert other["statusCode"] == 422
    [field] = body_of(other)["error"]["fields"]
    assert field["field"] == "Idempotency-Key" and first_id in field["message"]
    assert job_count() == 1 and set(env.queued_job_ids()) == {first_id}


def test_keys_are_scoped_to_the_owner_and_optional(env: Env) -> None:
    mine = body_of(post_as(TASK_1, {"prompt": "p"}, key="k"))["id"]
    theirs = body_of(post_as(BILLING, {"prompt": "p"}, key="k"))["id"]
    assert mine != theirs
    unkeyed = {body_of(post_as(TASK_1, {"prompt": "p"}))["id"] for _ in range(2)}
    assert len(unkeyed) == 2 and job_count() == 4


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_an_invalid_key_is_400_and_writes_nothing(env: Env, key: str) -> None:
    response = post_as(TASK_1, {"prompt": "p"}, key=key)
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert job_count() == 0 and env.queued_job_ids() == []


def test_a_key_of_255_characters_is_kept(env: Env) -> None:
    key = "k" * 255
    assert body_of(post_as(TASK_1, {"prompt": "p"}, key=key)) == body_of(post_as(TASK_1, {"prompt": "p"}, key=key))


def test_a_retry_after_the_queue_failed_makes_the_job_then(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from videogen.services import SubmitQueue

    real = SubmitQueue.enqueue

    def down(self: SubmitQueue, job_id: str) -> None:
        raise RuntimeError("SQS unavailable")

    monkeypatch.setattr(SubmitQueue, "enqueue", down)
    with pytest.raises(RuntimeError):
        accept(get_services(), {"prompt": "p"}, door=Door.API, owner=Owner(ROLE), identity=identity("k"))
    assert job_count() == 0  # the job and with it the key were taken back
    monkeypatch.setattr(SubmitQueue, "enqueue", real)
    made = accept(get_services(), {"prompt": "p"}, door=Door.API, owner=Owner(ROLE), identity=identity("k"))
    assert not made.replayed and env.queued_job_ids() == [made.job.id]


def test_a_retry_after_a_death_before_the_queue_message_queues_the_job(env: Env) -> None:
    # The first attempt wrote the job and died before sending its message.
    services = get_services()
    services.store.create(
        Job(id=identity("k").job_id, status=JobStatus.QUEUED, request=VideoRequest(prompt="p"), caller=ROLE)
    )
    again = accept(services, {"prompt": "p"}, door=Door.API, owner=Owner(ROLE), identity=identity("k"))
    assert again.replayed and env.queued_job_ids() == [again.job.id]


def test_concurrent_deliveries_of_one_request_make_one_job(env: Env) -> None:
    services = get_services()
    services.catalog.models()  # warm the model cache, as a running function has it
    barrier = threading.Barrier(6)
    results: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        results.append(accept(services, {"prompt": "p"}, door=Door.API, owner=Owner(ROLE), identity=identity("k")))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.job.id for r in results}) == 1 and sum(not r.replayed for r in results) == 1
    assert job_count() == 1


def identity(key: str) -> RequestIdentity:
    return RequestIdentity(Door.API, ROLE, key, field="Idempotency-Key")


def test_operators_read_door_jobs_that_no_principal_owns(env: Env) -> None:
    made = invoke("intake_event", sample_event("eventbridge_video_requested"))
    forged = copy.deepcopy(sample_event("eventbridge_video_requested"))
    forged.update(id="forged-1", source=ALICE)  # a source that looks like a principal
    planted = invoke("intake_event", forged)
    assert request("GET", f"/videos/{planted['id']}", ALICE)["statusCode"] == 404
    assert request("DELETE", f"/videos/{planted['id']}", ALICE)["statusCode"] == 404
    assert body_of(request("GET", "/videos", ALICE))["items"] == []
    seen = request("GET", f"/operator/videos/{made['id']}", ALICE, resource="/operator/videos/{id}")
    assert body_of(seen)["caller"] == "eventbridge:123456789012:com.example.catalog"
