"""Batches through the functions on moto: a manifest through the S3 door and POST /batches, its lines made
into jobs once however often they are read (redelivery, continuation, a crash before the checkpoint), the
refused lines reported, the ends counted once, one results file and one BatchCompleted."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.handlers.conftest import BUCKET, Env
from tests.handlers.test_api_owners import header
from tests.handlers.test_intake_doors import SEED, upload
from tests.support.handlers import invoke, sample_event
from videogen import batches
from videogen.aws import client
from videogen.models import JobStatus
from videogen.services import get_services, reset_services


@pytest.fixture
def batch_queue(env: Env, monkeypatch: pytest.MonkeyPatch) -> str:
    url: str = client("sqs").create_queue(QueueName="videogen-batch")["QueueUrl"]
    monkeypatch.setenv("BATCH_QUEUE_URL", url)
    reset_services()
    return url


def manifest(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


GOOD = [{**SEED, "client_ref": "sku-1"}, {**SEED, "prompt": "second"}, {**SEED, "prompt": "third", "client_ref": "c"}]
MIXED = manifest(GOOD[0], b"{not json", GOOD[1], b"", {**SEED, "duration": 3, "client_ref": "bad"}, GOOD[2])


def run_batches(queue_url: str, limit: int = 50) -> list[str]:
    """Deliver the batch queue's messages to the batch function until it is empty: the results."""
    results: list[str] = []
    for _ in range(limit):
        messages = client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1).get("Messages", [])
        if not messages:
            return results
        record = copy.deepcopy(sample_event("sqs_submit")["Records"][0])
        record.update(body=messages[0]["Body"], messageId=messages[0]["MessageId"])
        answer = invoke("batch", {"Records": [record]})
        assert answer == {"batchItemFailures": []}, answer
        client("sqs").delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        results.append(json.loads(messages[0]["Body"])["action"])
    raise AssertionError("the batch queue never emptied")


def batch_jobs() -> list[dict[str, Any]]:
    items = client("dynamodb").scan(TableName="videogen-jobs")["Items"]
    return sorted((i for i in items if "batch_id" in i), key=lambda i: int(i["batch_line"]["N"]))


def s3_json_lines(key: str) -> list[dict[str, Any]]:
    body = client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def submit_messages(env: Env) -> list[str]:
    found: list[str] = []
    while batch := env.queued_job_ids():
        found += batch
    return found


def test_an_s3_manifest_is_one_batch_of_jobs_with_its_refused_lines_reported(env: Env, batch_queue: str) -> None:
    notification = upload("requests/catalogue.jsonl", MIXED)
    assert invoke("intake_s3", notification)["records"][0]["outcome"] == "accepted"
    receipt = json.loads(client("s3").get_object(Bucket=BUCKET, Key="requests/catalogue.batch.json")["Body"].read())
    batch_id = receipt["batch_id"]
    assert receipt["status"] == "reading"
    # The notification delivered again (same ETag and sequencer): the same batch, nothing new.
    again = invoke("intake_s3", notification)["records"][0]
    assert again == {"key": "requests/catalogue.jsonl", "outcome": "replayed", "id": batch_id}
    run_batches(batch_queue)
    jobs = batch_jobs()
    assert [(int(j["batch_line"]["N"]), j.get("client_ref", {}).get("S")) for j in jobs] == [
        (1, "sku-1"),
        (3, None),
        (6, "c"),
    ]
    assert {j["batch_id"]["S"] for j in jobs} == {batch_id} and {j["door"]["S"] for j in jobs} == {"s3"}
    assert sorted(submit_messages(env)) == sorted(j["id"]["S"] for j in jobs)
    errors = s3_json_lines("requests/catalogue.errors.jsonl")
    assert [(e["line"], e["field"]) for e in errors] == [(2, "body"), (5, "duration")]
    receipt = json.loads(client("s3").get_object(Bucket=BUCKET, Key="requests/catalogue.batch.json")["Body"].read())
    assert receipt["status"] == "running" and receipt["lines"] == 6 and receipt["jobs"] == 3
    # The S3 door's batch has no IAM owner: its owner's routes do not show it, the operator route does.
    read = copy.deepcopy(sample_event("api_get_video"))
    read.update(path=f"/batches/{batch_id}", httpMethod="GET")
    assert invoke("api", read)["statusCode"] == 404
    read.update(path=f"/operator/batches/{batch_id}")
    operator_view = invoke("api", read)
    assert operator_view["statusCode"] == 200 and json.loads(operator_view["body"])["batch_id"] == batch_id
    read.update(path="/operator/batches/unknown")
    assert invoke("api", read)["statusCode"] == 404
    assert receipt["counts"] == {"rejected": 2, "pending": 3, **dict.fromkeys(batches.ENDED, 0)}
    assert receipt["errors"] == f"s3://{BUCKET}/requests/catalogue.errors.jsonl"

    # Every job ends: the outbox counts each once (delivered twice here) and the last queues the batch's end.
    store = get_services().store
    outcomes = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
    for job, status in zip(jobs, outcomes, strict=True):
        store.finish(job["id"]["S"], status, error=None if status is JobStatus.COMPLETED else "no")
    events = env.events()
    for job in jobs:  # a redelivered end changes no count
        assert not batches.batch_store(get_services()).count_end(store.get(job["id"]["S"]))  # type: ignore[arg-type]
    assert run_batches(batch_queue) == ["complete"]
    assert run_batches(batch_queue) == []
    completed = [e for e in events + env.events() if e["detail-type"] == "BatchCompleted"]
    assert len(completed) == 1
    detail = completed[0]["detail"]
    assert detail["batch_id"] == batch_id and detail["results"] == f"s3://{BUCKET}/batches/{batch_id}/results.jsonl"
    assert detail["counts"] == {
        "rejected": 2,
        "completed": 1,
        "failed": 1,
        "cancelled": 1,
        "expired": 0,
        "timed_out": 0,
    }
    results = s3_json_lines(f"batches/{batch_id}/results.jsonl")
    assert [(r["line"], r["status"], r["client_ref"]) for r in results] == [
        (1, "completed", "sku-1"),
        (2, "rejected", None),
        (3, "failed", None),
        (5, "rejected", "bad"),
        (6, "cancelled", "c"),
    ]
    assert results[0]["job_id"] == jobs[0]["id"]["S"] and "duration" in results[3]["error"]
    assert set(results[0]) == {"line", "client_ref", "job_id", "status", "s3_uri", "sha256", "error", "cost"}
    final = json.loads(client("s3").get_object(Bucket=BUCKET, Key="requests/catalogue.batch.json")["Body"].read())
    assert final["status"] == "finished" and final["results"] == detail["results"]
    # The ending message delivered again: no second event.
    batches.BatchQueue(batch_queue).send(batch_id, "complete")
    run_batches(batch_queue)
    assert [e for e in env.events() if e["detail-type"] == "BatchCompleted"] == []


def test_continuations_and_a_crash_before_the_checkpoint_never_make_a_line_twice(
    env: Env, batch_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_LINES_PER_INVOCATION", "2")
    reset_services()
    lines = [{**SEED, "prompt": f"line {n}"} for n in range(7)]
    invoke("intake_s3", upload("requests/big.jsonl", manifest(*lines)))
    actions = run_batches(batch_queue)
    assert len(actions) == 4  # 2 + 2 + 2 + 1 lines: three continuations
    assert len(batch_jobs()) == 7
    # A crash after the jobs of lines 3-7 were made but before their checkpoint: read from line 3 again.
    batch_id = batch_jobs()[0]["batch_id"]["S"]
    store = batches.batch_store(get_services())
    record = store.get(batch_id)
    assert record is not None and record.intake_done and record.accepted == 7
    store.update(
        batch_id,
        "SET #next_line = :line, #next_offset = :offset, #accepted = :two, #intake_done = :false, "
        "#errors_written = :false",
        None,
        {":line": 3, ":offset": len(manifest(*lines[:2])), ":two": 2, ":false": False},
    )
    batches.BatchQueue(batch_queue).send(batch_id)
    run_batches(batch_queue)
    jobs = batch_jobs()
    assert [int(j["batch_line"]["N"]) for j in jobs] == list(range(1, 8))
    again = store.get(batch_id)
    assert again is not None and again.accepted == 7 and again.lines == 7 and again.intake_done


def test_post_batches_takes_a_json_array_or_lines_and_its_idempotency_key(env: Env, batch_queue: str) -> None:
    def post(body: str, key: str | None = None) -> dict[str, Any]:
        event = copy.deepcopy(sample_event("api_post_videos"))
        event.update(path="/batches", resource="/batches", body=body)
        if key:
            event["headers"] = {**event.get("headers", {}), "Idempotency-Key": key}
        return invoke("api", event)

    def get(path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        event = copy.deepcopy(sample_event("api_get_video"))
        event.update(path=path, httpMethod="GET", queryStringParameters=query)
        return invoke("api", event)

    array = json.dumps([GOOD[0], {"prompt": "x", "duration": 3}])
    answer = post(array, key="k-1")
    assert answer["statusCode"] == 202, answer
    batch_id = json.loads(answer["body"])["batch_id"]
    replay = post(array, key="k-1")
    assert replay["statusCode"] == 202 and json.loads(replay["body"])["batch_id"] == batch_id
    assert header(replay, "Idempotent-Replayed") == "true"
    mismatch = post(json.dumps([GOOD[1]]), key="k-1")
    assert mismatch["statusCode"] == 422
    assert json.loads(mismatch["body"])["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert post("")["statusCode"] == 400 and post("[1, 2")["statusCode"] == 400 and post("[]")["statusCode"] == 422
    jsonl = post(manifest(GOOD[1], GOOD[2]).decode())
    assert jsonl["statusCode"] == 202
    run_batches(batch_queue)
    view = json.loads(get(f"/batches/{batch_id}")["body"])
    assert view["jobs"] == 1 and view["counts"]["rejected"] == 1 and view["status"] == "running"
    errors = s3_json_lines(f"batches/{batch_id}/errors.jsonl")
    assert errors == [{"line": 2, "field": "duration", "message": errors[0]["message"]}]
    listing = json.loads(get(f"/batches/{batch_id}/jobs")["body"])
    assert [job["batch_line"] for job in listing["items"]] == [1] and listing["items"][0]["client_ref"] == "sku-1"
    assert get(f"/batches/{batch_id}/jobs", {"status": "nope"})["statusCode"] == 422
    assert json.loads(get(f"/batches/{batch_id}/jobs", {"status": "completed"})["body"])["items"] == []
    assert get("/batches/unknown")["statusCode"] == 404
    # DELETE cancels what has not ended, and the batch ends.
    event = copy.deepcopy(sample_event("api_get_video"))
    event.update(path=f"/batches/{batch_id}", httpMethod="DELETE")
    assert invoke("api", event)["statusCode"] == 202
    run_batches(batch_queue)
    env.events()
    run_batches(batch_queue)
    view = json.loads(get(f"/batches/{batch_id}")["body"])
    assert view["status"] == "finished" and view["counts"]["cancelled"] == 1 and view["results_url"]
