"""The S3 and EventBridge doors: same validation as the API, never silence on rejection, and a request
made into one job however often its notification or event is delivered."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any
from urllib.parse import quote_plus

import pytest
from botocore.exceptions import ClientError

from tests.handlers.conftest import BUCKET, Env
from tests.support.handlers import invoke, sample_event
from videogen.aws import client
from videogen.storage import VideoStorage

SEED = sample_event("eventbridge_video_requested")["detail"]
_sequencers = itertools.count(0x0A1B2C3D4E5F6789)


def upload(key: str, body: bytes | dict[str, Any] = SEED) -> dict[str, Any]:
    """Put a request object and return the notification S3 sends for it (its key URL-encoded, its real
    ETag, a sequencer greater than any before)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    etag = client("s3").put_object(Bucket=BUCKET, Key=key, Body=data)["ETag"].strip('"')
    return notification(record(key, etag))


def record(key: str, etag: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("s3_request_created"))
    entry: dict[str, Any] = event["Records"][0]
    entry["s3"]["object"].update(key=quote_plus(key, safe="/"), eTag=etag, sequencer=f"{next(_sequencers):018X}")
    return entry


def notification(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": [copy.deepcopy(r) for r in records]}


def records_of(event: dict[str, Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = event["Records"]
    return records


def read(key: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return body


def exists(key: str) -> bool:
    return client("s3").list_objects_v2(Bucket=BUCKET, Prefix=key).get("KeyCount", 0) > 0


def jobs() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = client("dynamodb").scan(TableName="videogen-jobs")["Items"]
    return items


def test_sample_notification_with_its_encoded_key_becomes_a_job_with_a_receipt(env: Env) -> None:
    # The sample event carries "requests/spring launch/backpack ü.json", URL-encoded as S3 sends it.
    key = "requests/spring launch/backpack ü.json"
    event = copy.deepcopy(sample_event("s3_request_created"))
    etag = client("s3").put_object(Bucket=BUCKET, Key=key, Body=json.dumps(SEED).encode())["ETag"].strip('"')
    event["Records"][0]["s3"]["object"]["eTag"] = etag
    [outcome] = invoke("intake_s3", event)["records"]
    assert outcome["key"] == key and outcome["outcome"] == "accepted"
    receipt = read("requests/spring launch/backpack ü.job.json")
    assert receipt["status"] == "queued" and receipt["id"] == outcome["id"]
    assert env.queued_job_ids() == [receipt["id"]]
    [job] = jobs()
    assert job["caller"]["S"] == f"s3:{BUCKET}" and job["source"]["S"] == f"s3://{BUCKET}/{key}#etag={etag}"


def test_s3_rejected_request_leaves_a_readable_error_and_an_event(env: Env) -> None:
    invoke("intake_s3", upload("requests/bad.json", b'{"prompt": "p", "resolution": "1080p"}'))
    error = read("requests/bad.error.json")
    assert error["request"] == "requests/bad.json"
    assert error["error"]["fields"][0]["field"] == "resolution"
    assert env.queued_job_ids() == []
    [event] = env.events()
    assert event["detail-type"] == "VideoRejected" and event["detail"]["door"] == "s3"


def test_s3_receipts_and_the_test_event_are_not_taken_for_requests(env: Env) -> None:
    for key in ("requests/x.job.json", "requests/x.error.json"):
        [outcome] = invoke("intake_s3", notification(record(key, "0" * 32)))["records"]
        assert outcome["outcome"] == "skipped"
    test_event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Time": "2026-12-02T03:00:00.000Z",
        "Bucket": BUCKET,
        "RequestId": "5582815E1AEA5ADF",
        "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
    }
    assert invoke("intake_s3", test_event) == {"records": []}
    assert jobs() == [] and env.queued_job_ids() == [] and env.events() == []


def test_a_redelivered_notification_answers_with_the_job_it_made(env: Env) -> None:
    event = upload("requests/launch.json")
    first = invoke("intake_s3", event)["records"][0]
    again = [invoke("intake_s3", event)["records"][0] for _ in range(2)]
    assert first["outcome"] == "accepted"
    assert [a["outcome"] for a in again] == ["replayed", "replayed"]
    assert {a["id"] for a in again} == {first["id"]}
    assert len(jobs()) == 1 and read("requests/launch.job.json")["id"] == first["id"]
    # A replay of a job still queued queues it again (its first delivery may have died before sending the
    # message); submit claims a job before it sends it, so it is still sent once.
    assert set(env.queued_job_ids()) == {first["id"]}
    assert env.openrouter.requests_to("/api/v1/videos") == []


def test_a_missing_object_is_answered_and_the_other_records_are_not_run_twice(env: Env) -> None:
    present = records_of(upload("requests/present.json"))[0]
    gone = records_of(upload("requests/gone.json"))[0]
    client("s3").delete_object(Bucket=BUCKET, Key="requests/gone.json")
    event = notification(present, gone)
    outcomes = invoke("intake_s3", event)["records"]
    assert [o["outcome"] for o in outcomes] == ["accepted", "rejected"]
    assert read("requests/gone.error.json")["error"]["code"] == 404
    rejected = env.events()
    assert [e["detail-type"] for e in rejected] == ["VideoRejected"]
    # The whole notification again: the job is found, the rejection is not answered twice.
    assert [o["outcome"] for o in invoke("intake_s3", event)["records"]] == ["replayed", "rejected"]
    assert len(jobs()) == 1 and env.events() == []


def test_a_partly_failed_notification_is_retried_without_a_second_job(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = notification(records_of(upload("requests/one.json"))[0], records_of(upload("requests/two.json"))[0])
    real = VideoStorage.get_request
    throttled = {"requests/two.json"}

    def flaky(self: VideoStorage, key: str, **kwargs: Any) -> bytes:
        if key in throttled:
            throttled.discard(key)
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "Get")
        return real(self, key, **kwargs)

    monkeypatch.setattr(VideoStorage, "get_request", flaky)
    with pytest.raises(Exception, match="1 of 2 records failed"):
        invoke("intake_s3", event)
    assert len(jobs()) == 1 and exists("requests/one.job.json") and not exists("requests/two.job.json")
    # Lambda's retry of the same event: the first record finds its job, the second is made now.
    outcomes = invoke("intake_s3", event)["records"]
    assert [o["outcome"] for o in outcomes] == ["replayed", "accepted"]
    assert len(jobs()) == 2
    assert read("requests/one.job.json")["id"] == outcomes[0]["id"]


def test_a_new_upload_is_a_new_request_and_a_late_redelivery_keeps_the_newer_receipt(env: Env) -> None:
    older = upload("requests/same.json")
    first = invoke("intake_s3", older)["records"][0]
    newer = upload("requests/same.json")  # the same bytes again: same ETag, a new sequencer
    second = invoke("intake_s3", newer)["records"][0]
    assert first["outcome"] == second["outcome"] == "accepted" and first["id"] != second["id"]
    late = invoke("intake_s3", older)["records"][0]
    assert late == {**first, "outcome": "replayed"}
    assert read("requests/same.job.json")["id"] == second["id"]


def test_the_same_invalid_bytes_uploaded_again_are_rejected_again_but_a_redelivery_is_not(env: Env) -> None:
    bad = b'{"prompt": ""}'
    older = upload("requests/again.json", bad)
    assert invoke("intake_s3", older)["records"][0]["outcome"] == "rejected"
    first = read("requests/again.error.json")
    newer = upload("requests/again.json", bad)  # the same bytes again: same ETag, a new sequencer
    assert records_of(newer)[0]["s3"]["object"]["eTag"] == records_of(older)[0]["s3"]["object"]["eTag"]
    assert invoke("intake_s3", newer)["records"][0]["outcome"] == "rejected"
    second = read("requests/again.error.json")
    assert first["source"] == second["source"] and second["sequencer"] != first["sequencer"]
    assert second["sequencer"] == records_of(newer)[0]["s3"]["object"]["sequencer"]
    assert [e["detail-type"] for e in env.events()] == ["VideoRejected", "VideoRejected"]
    # Redeliveries of either notification: answered already, no further event, the newer receipt kept.
    for event in (newer, older):
        assert invoke("intake_s3", event)["records"][0]["outcome"] == "rejected"
    assert env.events() == [] and read("requests/again.error.json") == second
    assert jobs() == [] and env.queued_job_ids() == []


def test_a_versioned_bucket_makes_one_job_per_version(env: Env) -> None:
    s3 = client("s3")
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})

    def versioned_upload(body: dict[str, Any]) -> dict[str, Any]:
        put = s3.put_object(Bucket=BUCKET, Key="requests/v.json", Body=json.dumps(body).encode())
        entry = record("requests/v.json", put["ETag"].strip('"'))
        entry["s3"]["object"]["versionId"] = put["VersionId"]
        return notification(entry)

    older = versioned_upload(SEED)
    first = invoke("intake_s3", older)["records"][0]
    assert first["outcome"] == "accepted"
    assert invoke("intake_s3", older)["records"][0] == {**first, "outcome": "replayed"}
    assert len(jobs()) == 1 and read("requests/v.job.json")["id"] == first["id"]
    version = records_of(older)[0]["s3"]["object"]["versionId"]
    [job] = jobs()
    assert job["source"]["S"] == f"s3://{BUCKET}/requests/v.json?versionId={version}"
    newer = versioned_upload({**SEED, "prompt": "the second version"})
    second = invoke("intake_s3", newer)["records"][0]
    assert second["outcome"] == "accepted" and second["id"] != first["id"] and len(jobs()) == 2
    # A late redelivery of the older version's notification: its own job, read by its version id (the key
    # holds a newer one), and the newer receipt is kept.
    assert invoke("intake_s3", older)["records"][0] == {**first, "outcome": "replayed"}
    assert len(jobs()) == 2 and read("requests/v.job.json")["id"] == second["id"]
    # A version whose notification comes only after a newer version's: read by its version id, it is not
    # superseded (as an overwritten ETag is) but made into its own job, and the newest receipt is kept.
    delayed = versioned_upload({**SEED, "prompt": "the third version"})
    fourth = invoke("intake_s3", versioned_upload({**SEED, "prompt": "the fourth version"}))["records"][0]
    third = invoke("intake_s3", delayed)["records"][0]
    assert third["outcome"] == "accepted" and len(jobs()) == 4 and read("requests/v.job.json")["id"] == fourth["id"]
    prompts = {j["id"]["S"]: j["request"]["M"]["prompt"]["S"] for j in jobs()}
    assert prompts[first["id"]] == SEED["prompt"] and prompts[second["id"]] == "the second version"
    assert prompts[third["id"]] == "the third version" and prompts[fourth["id"]] == "the fourth version"


def test_a_notification_for_a_replaced_object_leaves_it_to_the_newer_one(env: Env) -> None:
    stale = upload("requests/edited.json", {**SEED, "prompt": "first draft"})
    fresh = upload("requests/edited.json", {**SEED, "prompt": "final"})
    assert invoke("intake_s3", stale)["records"][0]["outcome"] == "superseded"
    assert jobs() == [] and not exists("requests/edited.job.json")
    assert invoke("intake_s3", fresh)["records"][0]["outcome"] == "accepted"
    [job] = jobs()
    assert job["request"]["M"]["prompt"]["S"] == "final"


def test_a_newer_upload_clears_the_error_receipt_of_an_older_one(env: Env) -> None:
    invoke("intake_s3", upload("requests/fixed.json", b'{"prompt": ""}'))
    assert exists("requests/fixed.error.json")
    invoke("intake_s3", upload("requests/fixed.json"))
    assert exists("requests/fixed.job.json") and not exists("requests/fixed.error.json")


def test_eventbridge_request_becomes_a_job_owned_by_its_source_namespace(env: Env) -> None:
    result = invoke("intake_event", sample_event("eventbridge_video_requested"))
    assert result["status"] == "queued" and env.queued_job_ids() == [result["id"]]
    job = client("dynamodb").get_item(TableName="videogen-jobs", Key={"id": {"S": result["id"]}})["Item"]
    assert job["door"]["S"] == "eventbridge"
    assert job["caller"]["S"] == "eventbridge:123456789012:com.example.catalog"
    assert job["source"]["S"] == "events:6a7e8feb-b491-4cf7-a9f1-bf3703467718"


def test_a_redelivered_event_answers_with_the_job_it_made(env: Env) -> None:
    event = sample_event("eventbridge_video_requested")
    first = invoke("intake_event", event)
    again = invoke("intake_event", event)
    assert again == {**first, "replayed": True} and first["replayed"] is False
    assert len(jobs()) == 1
    other = invoke("intake_event", {**event, "id": "another-event-id"})
    assert other["id"] != first["id"] and len(jobs()) == 2


def test_eventbridge_rejected_request_emits_video_rejected(env: Env) -> None:
    event = copy.deepcopy(sample_event("eventbridge_video_requested"))
    event["detail"]["input_references"][0]["image_url"]["url"] = "http://169.254.169.254/latest/meta-data"
    result = invoke("intake_event", event)
    assert result["status"] == "rejected"
    [emitted] = env.events()
    assert emitted["detail-type"] == "VideoRejected"
    assert emitted["detail"]["fields"][0]["field"] == "input_references[0].image_url.url"
    assert emitted["detail"]["source"] == "events:6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert env.queued_job_ids() == []
