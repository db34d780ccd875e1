"""Batches through `videogen local serve`: a manifest with valid and invalid lines via S3 and via POST
/batches, its results file, exactly one BatchCompleted, and a redelivered S3 notification that makes no
second batch."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from tests.e2e.conftest import VIDEOGEN, Served
from tests.e2e.test_pipeline import reference, video_request  # noqa: F401 (reference: a fixture)
from videogen_local.localmode.names import Names

pytestmark = pytest.mark.e2e
RESULT_FIELDS = {"line", "client_ref", "job_id", "status", "s3_uri", "sha256", "error", "cost"}


def manifest(image: str, tag: str) -> list[dict[str, Any]]:
    return [
        {**video_request(image, f"{tag} one"), "client_ref": "sku-1"},
        {**video_request(image, f"{tag} two"), "duration": 3},  # not a duration the model has
        {**video_request(image, f"{tag} three"), "client_ref": "sku-3"},
    ]


def wait_until(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.5)
    return found


def completed_events(served: Served, batch_id: str) -> list[dict[str, Any]]:
    return [
        e for e in served.drain_events() if e["detail-type"] == "BatchCompleted" and e["detail"]["batch_id"] == batch_id
    ]


def s3_lines(served: Served, uri: str) -> list[dict[str, Any]]:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = served.aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.splitlines()]


def test_an_s3_manifest_runs_as_one_batch_once(served: Served, reference: str) -> None:  # noqa: F811
    s3, bucket = served.aws("s3"), served.info["bucket"]
    name = f"requests/e2e batch {uuid.uuid4().hex[:6]}"
    lines = manifest(reference, "s3")
    body = "\n".join(json.dumps(line) for line in [lines[0], lines[1]]) + "\n{broken\n" + json.dumps(lines[2]) + "\n"
    etag = s3.put_object(Bucket=bucket, Key=f"{name}.jsonl", Body=body.encode())["ETag"].strip('"')

    def receipt() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=f"{name}.batch.json")["Body"].read())
        except s3.exceptions.NoSuchKey:
            return None
        return found if found["status"] == "finished" else None

    finished = wait_until(receipt, "the S3 batch's end", 180)
    batch_id = finished["batch_id"]
    assert finished["jobs"] == 2 and finished["counts"]["rejected"] == 2 and finished["counts"]["completed"] == 2
    results = s3_lines(served, finished["results"])
    assert [(r["line"], r["status"], r["client_ref"]) for r in results] == [
        (1, "completed", "sku-1"),
        (2, "rejected", None),
        (3, "rejected", None),
        (4, "completed", "sku-3"),
    ]
    assert all(set(r) == RESULT_FIELDS for r in results)
    for row in results:
        if row["status"] == "completed":
            job = served.job_record(row["job_id"])
            assert (
                job is not None and job["video"]["s3_uri"] == row["s3_uri"] == f"s3://{bucket}/videos/{job['id']}.mp4"
            )
            assert job["video"]["sha256"] == row["sha256"] and job["batch_id"] == batch_id
    errors = s3_lines(served, f"s3://{bucket}/{name}.errors.jsonl")
    assert [(e["line"], e["field"]) for e in errors] == [(2, "duration"), (3, "body")]

    # The notification delivered again (same object, ETag and sequencer): the same batch, nothing new.
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {
                        "key": quote_plus(f"{name}.jsonl", safe="/"),
                        "eTag": etag,
                        "sequencer": finished["sequencer"],
                        "size": len(body),
                    },
                },
            }
        ]
    }
    answer = served.aws("lambda").invoke(FunctionName=Names().function("intake_s3"), Payload=json.dumps(event).encode())
    (record,) = json.loads(answer["Payload"].read())["records"]
    assert record == {"key": f"{name}.jsonl", "outcome": "replayed", "id": batch_id}
    records = served.aws("dynamodb").scan(
        TableName=served.info["batches_table"],
        FilterExpression="manifest_key = :k AND #i = :batch",
        ExpressionAttributeNames={"#i": "item"},
        ExpressionAttributeValues={":k": {"S": f"{name}.jsonl"}, ":batch": {"S": "batch"}},
    )["Items"]
    assert len(records) == 1
    time.sleep(2)  # anything the replay would wrongly queue has run by now
    assert len(completed_events(served, batch_id)) == 1
    (event_detail,) = [e["detail"] for e in served.events if e.get("detail", {}).get("batch_id") == batch_id]
    counts = {s: sum(1 for r in results if r["status"] == s) for s in {r["status"] for r in results}}
    assert {k: v for k, v in event_detail["counts"].items() if v} == counts
    assert event_detail["results"] == finished["results"]


def test_post_batches_runs_a_json_array_to_its_results(served: Served, reference: str) -> None:  # noqa: F811
    response = served.api(
        "POST", "/batches", json=manifest(reference, "api"), headers={"Idempotency-Key": uuid.uuid4().hex}
    )
    assert response.status_code == 202, response.text
    batch_id = response.json()["batch_id"]
    assert response.headers["Location"].endswith(f"/batches/{batch_id}")

    def finished() -> dict[str, Any] | None:
        view: dict[str, Any] = served.api("GET", f"/batches/{batch_id}").json()
        return view if view["status"] == "finished" else None

    view = wait_until(finished, "the API batch's end", 180)
    assert view["jobs"] == 2 and view["counts"]["completed"] == 2 and view["counts"]["rejected"] == 1
    results = [json.loads(line) for line in httpx.get(view["results_url"], timeout=30).text.splitlines()]
    assert [(r["line"], r["status"]) for r in results] == [(1, "completed"), (2, "rejected"), (3, "completed")]
    listing = served.api("GET", f"/batches/{batch_id}/jobs", params={"limit": "1"}).json()
    assert [job["batch_line"] for job in listing["items"]] == [1] and listing["next_token"]
    rest = served.api("GET", f"/batches/{batch_id}/jobs", params={"next_token": listing["next_token"]}).json()
    assert [job["batch_line"] for job in rest["items"]] == [3]
    assert served.api("DELETE", f"/batches/{batch_id}").status_code == 409  # it has ended
    time.sleep(1)
    assert len(completed_events(served, batch_id)) == 1


def test_the_batch_cli_submits_waits_with_a_progress_bar_and_prints_the_results(
    served: Served,
    reference: str,  # noqa: F811
    tmp_path: Any,
) -> None:
    def videogen(*args: str) -> subprocess.CompletedProcess[str]:
        api = ["--api", served.info["api_url"]]
        return subprocess.run([str(VIDEOGEN), "batch", *args, *api], capture_output=True, text=True, timeout=240)

    path = tmp_path / "manifest.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in manifest(reference, "cli")) + "\n")
    submitted = videogen("submit", str(path))
    assert submitted.returncode == 0, submitted.stderr
    batch_id = json.loads(submitted.stdout)["batch_id"]
    waited = videogen("wait", batch_id, "--interval", "0.5")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["status"] == "finished"
    assert "[" + "#" * 30 + "] 2/2 ended" in waited.stderr and "1 rejected" in waited.stderr
    status = json.loads(videogen("status", batch_id).stdout)
    assert status["counts"]["completed"] == 2
    results = videogen("results", batch_id)
    assert [json.loads(line)["status"] for line in results.stdout.splitlines()] == [
        "completed",
        "rejected",
        "completed",
    ]
