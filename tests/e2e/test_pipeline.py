"""The three doors end to end, the MP4 decodes, one result event per job, bad input enqueues nothing."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections import Counter
from typing import Any

import av
import pytest

from tests.conftest import TEST_KEY
from tests.e2e.conftest import Served
from tests.support.images import reference_png

pytestmark = pytest.mark.e2e
SEED_PROMPT = "Create a 4-second product video of the same backpack from the reference image."


@pytest.fixture(scope="module")
def reference(served: Served) -> str:
    served.aws("s3").put_object(Bucket=served.info["bucket"], Key="references/e2e.png", Body=reference_png(256))
    return f"s3://{served.info['bucket']}/references/e2e.png"


def video_request(reference: str, prompt: str = SEED_PROMPT) -> dict[str, Any]:
    return {
        "model": "bytedance/seedance-2.0-fast",
        "prompt": prompt,
        "duration": 4,
        "resolution": "480p",
        "aspect_ratio": "9:16",
        "input_references": [{"type": "image_url", "image_url": {"url": reference}}],
    }


def assert_playable(served: Served, job: dict[str, Any], width: int, height: int) -> None:
    body = served.aws("s3").get_object(Bucket=served.info["bucket"], Key=f"videos/{job['id']}.mp4")["Body"].read()
    assert hashlib.sha256(body).hexdigest() == job["video"]["sha256"] and len(body) == job["video"]["bytes"]
    with av.open(io.BytesIO(body)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert frames > 0
        # Portrait, as requested (the simulator may render smaller but keeps the aspect ratio).
        assert stream.codec_context.height > stream.codec_context.width
        assert abs(stream.codec_context.width / stream.codec_context.height - width / height) < 0.05


def test_api_door_delivers_a_playable_mp4(served: Served, reference: str) -> None:
    response = served.api("POST", "/videos", json=video_request(reference))
    assert response.status_code == 202
    job_id = response.json()["id"]
    served.wait_job(job_id)
    job = served.api("GET", f"/videos/{job_id}").json()
    assert job["status"] == "completed" and job["polls"][-1] == "completed"
    assert_playable(served, job, 9, 16)
    # The presigned URL in the job serves the same bytes.
    import httpx

    assert hashlib.sha256(httpx.get(job["video"]["url"], timeout=30).content).hexdigest() == job["video"]["sha256"]


def test_s3_door_records_the_job_id_next_to_the_request(served: Served, reference: str) -> None:
    s3 = served.aws("s3")
    bucket = served.info["bucket"]
    s3.put_object(Bucket=bucket, Key="requests/e2e door/ok ü.json", Body=json.dumps(video_request(reference)).encode())
    receipt = None
    deadline = time.monotonic() + 30
    while receipt is None and time.monotonic() < deadline:
        try:
            receipt = json.loads(s3.get_object(Bucket=bucket, Key="requests/e2e door/ok ü.job.json")["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.2)
    assert receipt is not None, "no receipt written"
    job = served.wait_job(receipt["id"])
    assert job["status"] == "completed" and job["door"] == "s3"


def test_s3_door_makes_one_job_per_upload(served: Served, reference: str) -> None:
    """The same bytes uploaded twice are two requests (two notifications, two sequencers); each upload is
    one job however the notification is delivered."""
    s3, bucket = served.aws("s3"), served.info["bucket"]
    body = json.dumps({**video_request(reference), "prompt": "uploaded twice"}).encode()
    receipts: list[str] = []
    for _ in range(2):
        s3.put_object(Bucket=bucket, Key="requests/e2e-twice.json", Body=body)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                receipt = json.loads(s3.get_object(Bucket=bucket, Key="requests/e2e-twice.job.json")["Body"].read())
            except s3.exceptions.NoSuchKey:
                receipt = {}
            if receipt.get("id") and receipt["id"] not in receipts:
                receipts.append(receipt["id"])
                break
            time.sleep(0.2)
    assert len(receipts) == 2, receipts
    assert all(served.wait_job(job_id)["caller"] == f"s3:{bucket}" for job_id in receipts)


def test_s3_door_rejection_leaves_a_readable_error(served: Served) -> None:
    s3 = served.aws("s3")
    bucket = served.info["bucket"]
    s3.put_object(Bucket=bucket, Key="requests/e2e-bad.json", Body=b'{"prompt": "p", "duration": 99}')
    deadline = time.monotonic() + 30
    while True:
        try:
            error = json.loads(s3.get_object(Bucket=bucket, Key="requests/e2e-bad.error.json")["Body"].read())
            break
        except s3.exceptions.NoSuchKey:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert error["error"]["fields"][0]["field"] == "duration"


def test_eventbridge_door_starts_a_job(served: Served, reference: str) -> None:
    before = {e["detail"].get("job_id") for e in served.drain_events()}
    served.aws("events").put_events(
        Entries=[
            {
                "Source": "com.example.e2e",
                "DetailType": "VideoRequested",
                "Detail": json.dumps(video_request(reference, "from eventbridge")),
                "EventBusName": served.info["event_bus"],
            }
        ]
    )
    deadline = time.monotonic() + 90
    while True:
        mine = [
            e
            for e in served.drain_events()
            if e["detail"].get("door") == "eventbridge" and e["detail"].get("job_id") not in before
        ]
        if mine:
            break
        assert time.monotonic() < deadline, "no result event for the EventBridge request"
    assert mine[0]["detail-type"] == "VideoCompleted"
    assert served.job_record(mine[0]["detail"]["job_id"])["door"] == "eventbridge"  # type: ignore[index]


def test_bad_input_is_rejected_and_nothing_is_enqueued(served: Served) -> None:
    table = served.info["jobs_table"]
    count = served.aws("dynamodb").scan(TableName=table, Select="COUNT")["Count"]
    cases = [
        ({"prompt": "p", "resolution": "1080p"}, 422),
        ({"prompt": "p", "input_references": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1/x"}}]}, 422),
        (
            {
                "prompt": "p",
                "input_references": [{"type": "image_url", "image_url": {"url": "s3://other-bucket/a.png"}}],
            },
            422,
        ),
        ({"prompt": "p", "extra": True}, 422),
        ("{broken", 400),
    ]
    for body, status in cases:
        kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
        response = served.api("POST", "/videos", **kwargs)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["message"]
    assert served.aws("dynamodb").scan(TableName=table, Select="COUNT")["Count"] == count


def test_exactly_one_result_event_per_job_and_no_secret_anywhere(served: Served) -> None:
    # Runs last in this module: every job above has finished by now.
    table = served.info["jobs_table"]
    items = served.aws("dynamodb").scan(TableName=table)["Items"]
    for item in items:
        served.wait_announced(item["id"]["S"])
    events = served.drain_events()
    outcomes = Counter(e["detail"]["job_id"] for e in events if e["detail-type"] in ("VideoCompleted", "VideoFailed"))
    assert set(outcomes) == {item["id"]["S"] for item in items}
    assert all(count == 1 for count in outcomes.values()), outcomes
    assert TEST_KEY not in json.dumps(events)
    assert TEST_KEY not in json.dumps(served.aws("dynamodb").scan(TableName=table)["Items"], default=str)
    with open(served.info["stderr_log"]) as log:
        assert TEST_KEY not in log.read()
    # Every object in the bucket: videos, request and reference uploads, the S3 door's .job.json / .error.json.
    s3, bucket = served.aws("s3"), served.info["bucket"]
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for item in page.get("Contents", [])
    ]
    if any(item["status"]["S"] == "completed" for item in items):  # their videos are among the objects scanned
        assert any(key.startswith("videos/") for key in keys)
    for key in keys:
        assert TEST_KEY.encode() not in s3.get_object(Bucket=bucket, Key=key)["Body"].read(), key
