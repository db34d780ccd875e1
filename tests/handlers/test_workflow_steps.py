"""Submit, poll, download and fail handlers with their sample events, against a scripted OpenRouter."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from typing import Any

import pytest

from tests.conftest import TEST_KEY
from tests.handlers.conftest import BUCKET, Env
from tests.support.handlers import invoke, sample_event
from tests.support.scripted_http import Canned, ScriptedServer
from videogen.aws import client
from videogen.cancel import cancel_job
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, VideoRequest
from videogen.services import get_services
from videogen_local.sim.mp4_boxes import FTYP, audio_trak, box, default_moov, moov, mvhd, streaming_head, video_trak

JOB_ID = "0123456789abcdef0123456789abcdef"
MP4 = streaming_head() + b"\x00" * 4000  # passes the download's box check (videogen.mp4)
ACCEPTED = {"id": "job-abc123", "polling_url": "/api/v1/videos/job-abc123", "status": "pending"}


def queued_job() -> None:
    request = VideoRequest.model_validate(sample_event("eventbridge_video_requested")["detail"])
    JobStore("videogen-jobs").create(Job(id=JOB_ID, status=JobStatus.QUEUED, request=request))


def job() -> Job:
    found = JobStore("videogen-jobs").get(JOB_ID)
    assert found is not None
    return found


def executions(env: Env) -> list[dict[str, Any]]:
    return client("stepfunctions").list_executions(stateMachineArn=env.state_machine_arn)["executions"]


def test_submit_posts_once_records_the_job_and_starts_one_execution(env: Env) -> None:
    queued_job()
    env.openrouter.on("POST", "/api/v1/videos", Canned(202, ACCEPTED))
    assert invoke("submit", sample_event("sqs_submit")) == {"batchItemFailures": []}
    submitted = job()
    assert submitted.status is JobStatus.SUBMITTED and submitted.openrouter_job_id == "job-abc123"
    assert submitted.polling_url == f"{env.openrouter.url}/api/v1/videos/job-abc123"
    [posted] = env.openrouter.requests_to("/api/v1/videos")
    assert json.loads(posted.body)["input_references"][0]["image_url"]["url"] == "https://example.com/backpack.png"
    [execution] = executions(env)
    assert execution["name"] == JOB_ID
    started = client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"]) == {
        "job_id": JOB_ID,
        "openrouter_job_id": "job-abc123",
        "polling_url": submitted.polling_url,
        "wait_seconds": 0,
        "max_polls": 5,
        "poll": {"status": "pending", "poll_count": 0, "error": None, "unsigned_urls": None},
    }
    # The same message again (SQS redelivers at least once): no second POST, no second execution.
    assert invoke("submit", sample_event("sqs_submit")) == {"batchItemFailures": []}
    assert len(env.openrouter.requests_to("/api/v1/videos")) == 1 and len(executions(env)) == 1


def test_submit_rejected_by_openrouter_fails_the_job_with_its_message(env: Env) -> None:
    queued_job()
    # A refusal of the request itself (an account-wide one pauses instead: tests/handlers/test_breaker.py).
    env.openrouter.on(
        "POST", "/api/v1/videos", Canned(400, {"error": {"code": 400, "message": "Prompt flagged by moderation"}})
    )
    assert invoke("submit", sample_event("sqs_submit")) == {"batchItemFailures": []}
    failed = job()
    assert failed.status is JobStatus.FAILED and "Prompt flagged by moderation" in (failed.error or "")
    [event] = env.events()
    assert event["detail-type"] == "VideoFailed" and event["detail"]["status"] == "failed"
    assert executions(env) == []


def test_submit_while_openrouter_is_down_is_retried_via_the_queue(env: Env) -> None:
    queued_job()
    env.openrouter.on("POST", "/api/v1/videos", Canned(503, {"error": {"code": 503, "message": "No provider"}}))
    event = sample_event("sqs_submit")
    other = {**event["Records"][0], "messageId": "other", "body": json.dumps({"job_id": "not-a-job"})}
    event["Records"].append(other)
    # Only the failed record goes back to the queue.
    assert invoke("submit", event) == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert job().status is JobStatus.QUEUED and job().submit_attempts == 1
    env.openrouter.on("POST", "/api/v1/videos", Canned(202, ACCEPTED))
    assert invoke("submit", event) == {"batchItemFailures": []}
    assert job().status is JobStatus.SUBMITTED


def test_submit_with_unknown_outcome_never_resends(env: Env) -> None:
    queued_job()
    env.openrouter.on("POST", "/api/v1/videos", Canned(drop=True))
    invoke("submit", sample_event("sqs_submit"))
    failed = job()
    assert failed.status is JobStatus.FAILED and "outcome unknown" in (failed.error or "")
    invoke("submit", sample_event("sqs_submit"))
    assert len(env.openrouter.requests_to("/api/v1/videos")) == 1
    assert [e["detail-type"] for e in env.events()] == ["VideoFailed"]


def submitted_job(env: Env) -> None:
    queued_job()
    env.openrouter.on("POST", "/api/v1/videos", Canned(202, ACCEPTED))
    invoke("submit", sample_event("sqs_submit"))


def poll_event(env: Env, count: int = 0) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("sfn_poll"))
    event["polling_url"] = f"{env.openrouter.url}/api/v1/videos/job-abc123"
    event["poll_count"] = count
    return event


def test_poll_records_each_status_and_returns_the_route(env: Env) -> None:
    submitted_job(env)
    env.openrouter.on(
        "GET",
        "/api/v1/videos/job-abc123",
        Canned(200, ACCEPTED),
        Canned(
            200,
            {**ACCEPTED, "status": "completed", "unsigned_urls": ["https://s.example/v.mp4"], "usage": {"cost": 0.4}},
        ),
    )
    assert invoke("poll", poll_event(env)) == {
        "status": "pending",
        "poll_count": 1,
        "error": None,
        "unsigned_urls": None,
    }
    result = invoke("poll", poll_event(env, 1))
    assert result["status"] == "completed" and result["unsigned_urls"] == ["https://s.example/v.mp4"]
    polled = job()
    assert polled.polls == ["pending", "completed"] and polled.usage is not None and polled.usage.cost == 0.4
    assert polled.status is JobStatus.IN_PROGRESS


def download_event(url: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("sfn_download"))
    event["unsigned_urls"] = [url]
    return event


def test_download_streams_to_s3_without_the_key_and_emits_one_event(env: Env, foreign_server: ScriptedServer) -> None:
    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(200, MP4, {"Content-Type": "video/mp4"}))
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4?sig=abc")) == {"status": "completed"}
    done = job()
    assert done.video is not None and done.video.bytes == len(MP4)
    assert done.video.sha256 == hashlib.sha256(MP4).hexdigest()
    assert done.video.s3_uri == f"s3://{BUCKET}/videos/{JOB_ID}.mp4"
    stored = client("s3").get_object(Bucket=BUCKET, Key=f"videos/{JOB_ID}.mp4")["Body"].read()
    assert stored == MP4
    assert "authorization" not in foreign_server.seen[0].headers
    # A retry of the same step does nothing more.
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4?sig=abc")) == {"status": "completed"}
    [event] = env.events()
    assert event["detail-type"] == "VideoCompleted"
    assert (
        event["detail"]["video"]["sha256"] == done.video.sha256
        and event["detail"]["idempotency_key"] == f"{JOB_ID}:completed"
    )
    assert TEST_KEY not in json.dumps(event)


def _download_in_background(url: str) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(invoke("download", download_event(url))))
    thread.start()
    return thread, result


def test_a_cancel_that_wins_the_race_with_a_download_ends_the_job_once(
    env: Env, foreign_server: ScriptedServer
) -> None:
    """The caller cancels while the video streams in: the cancel's terminal write lands first, so the job
    ends cancelled with one VideoFailed, and the download that lost leaves no video and no upload behind."""
    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(200, MP4, {"Content-Type": "video/mp4"}, delay=1.0))
    thread, result = _download_in_background(f"{foreign_server.url}/files/v.mp4")
    deadline = time.monotonic() + 10
    while not foreign_server.seen:  # the download is under way, its answer held back
        assert time.monotonic() < deadline
        time.sleep(0.01)
    cancelled = cancel_job(get_services(), job())
    thread.join(timeout=30)
    assert cancelled.cancelled and result == [{"status": "cancelled"}]
    assert job().status is JobStatus.CANCELLED and job().video is None
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/")["KeyCount"] == 0
    assert client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    [event] = env.events()
    assert event["detail-type"] == "VideoFailed" and event["detail"]["status"] == "cancelled"


def test_a_completion_that_wins_the_race_with_a_cancel_keeps_its_video(
    env: Env, foreign_server: ScriptedServer
) -> None:
    """The download's terminal write lands first: the cancel changes nothing (the API answers 409), the
    video stays, and the one event is VideoCompleted."""
    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(200, MP4, {"Content-Type": "video/mp4"}))
    stale = job()  # what the cancel read before the completion landed
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4")) == {"status": "completed"}
    outcome = cancel_job(get_services(), stale)
    assert not outcome.cancelled and outcome.job.status is JobStatus.COMPLETED
    assert client("s3").get_object(Bucket=BUCKET, Key=f"videos/{JOB_ID}.mp4")["Body"].read() == MP4
    assert [e["detail-type"] for e in env.events()] == ["VideoCompleted"]


def test_download_without_unsigned_urls_uses_the_authenticated_content_endpoint(env: Env) -> None:
    submitted_job(env)
    env.openrouter.on("GET", "/api/v1/videos/job-abc123/content", Canned(200, MP4))
    event = download_event("x")
    event["unsigned_urls"] = None
    assert invoke("download", event) == {"status": "completed"}
    [seen] = env.openrouter.requests_to("/api/v1/videos/job-abc123/content")
    assert seen.path.endswith("?index=0") and seen.headers["authorization"] == f"Bearer {TEST_KEY}"


def test_download_of_something_that_is_not_an_mp4_fails_the_job(env: Env, foreign_server: ScriptedServer) -> None:
    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(200, b"<html>expired link</html>" * 10))
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4")) == {"status": "failed"}
    assert "ftyp" in (job().error or "")
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/")["KeyCount"] == 0
    assert [e["detail-type"] for e in env.events()] == ["VideoFailed"]


def test_download_records_what_the_mp4_check_read_on_the_job_and_the_event(
    env: Env, foreign_server: ScriptedServer
) -> None:
    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(200, MP4, {"Content-Type": "video/mp4"}))
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4")) == {"status": "completed"}
    done = job()
    assert done.video is not None
    read = {"duration_seconds": 5.0, "width": 1280, "height": 720, "codec": "avc1", "has_audio": False}
    assert done.video.model_dump(include=set(read)) == read
    [event] = env.events()
    assert event["detail-type"] == "VideoCompleted"
    assert {key: event["detail"]["video"][key] for key in read} == read


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (FTYP + box(b"mdat", bytes(3000)), "not a playable MP4: no moov box"),
        (FTYP + moov(mvhd(), audio_trak()) + box(b"mdat", bytes(3000)), "not a playable MP4: no video track"),
        (FTYP + moov(mvhd(duration=0), video_trak()) + box(b"mdat", bytes(3000)), "duration (mvhd) is 0"),
        (FTYP + default_moov() + box(b"mdat", bytes(3000))[:-100], "ends inside the 'mdat' box"),
    ],
)
def test_download_of_a_body_that_is_not_a_playable_mp4_fails_once_and_stores_nothing(
    env: Env, foreign_server: ScriptedServer, body: bytes, reason: str
) -> None:
    """A permanent verdict: the job ends failed with the reason (no TransientError, so the state
    machine does not retry the same bytes), the multipart upload is aborted and videos/ stays empty."""
    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(200, body, {"Content-Type": "video/mp4"}))
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4")) == {"status": "failed"}
    failed = job()
    assert failed.status is JobStatus.FAILED and reason in (failed.error or "")
    assert (failed.error or "").startswith("downloaded video rejected: ")
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/")["KeyCount"] == 0
    assert client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    [event] = env.events()
    assert event["detail-type"] == "VideoFailed" and reason in event["detail"]["error"]


def test_fail_records_openrouter_error_verbatim_once(env: Env) -> None:
    submitted_job(env)
    assert invoke("fail", sample_event("sfn_fail")) == {"status": "failed"}
    assert invoke("fail", sample_event("sfn_fail")) == {"status": "failed"}
    assert job().error == "Provider rejected the request: content moderation"
    [event] = env.events()
    assert event["detail"]["error"] == "Provider rejected the request: content moderation"


def test_fail_records_time_out_and_workflow_errors(env: Env) -> None:
    submitted_job(env)
    assert invoke("fail", sample_event("sfn_timeout")) == {"status": "timed_out"}
    assert "after 60 polls" in (job().error or "")
    queued_job_id = JOB_ID  # the same job: a later error report cannot change the outcome
    assert invoke("fail", {**sample_event("sfn_error"), "job_id": queued_job_id}) == {"status": "timed_out"}
    assert len(env.events()) == 1


def test_download_falls_back_to_the_content_endpoint_when_the_unsigned_link_is_refused(
    env: Env, foreign_server: ScriptedServer
) -> None:
    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(403, b"<Error>Request has expired</Error>"))
    env.openrouter.on("GET", "/api/v1/videos/job-abc123/content", Canned(200, MP4))
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4")) == {"status": "completed"}
    assert "authorization" not in foreign_server.seen[0].headers
    assert (
        env.openrouter.requests_to("/api/v1/videos/job-abc123/content")[0].headers["authorization"]
        == f"Bearer {TEST_KEY}"
    )


def test_download_truncated_body_is_transient_and_leaves_nothing(env: Env, foreign_server: ScriptedServer) -> None:
    import pytest

    from videogen.errors import TransientError

    submitted_job(env)
    foreign_server.on("GET", "/files/v.mp4", Canned(200, MP4, truncate_to=100))
    with pytest.raises(TransientError, match="interrupted"):
        invoke("download", download_event(f"{foreign_server.url}/files/v.mp4"))
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/")["KeyCount"] == 0
    assert client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert job().status is JobStatus.SUBMITTED


def test_an_execution_that_ended_without_an_outcome_fails_its_job(env: Env) -> None:
    submitted_job(env)
    assert invoke("fail", sample_event("eventbridge_execution_failed")) == {"status": "failed"}
    assert job().error == "workflow error ExecutionTimedOut: States.Timeout"
    [event] = env.events()
    assert event["detail-type"] == "VideoFailed"
    # An execution that ended after its job was recorded (e.g. aborted by a cancel) changes nothing.
    assert invoke("fail", sample_event("eventbridge_execution_failed")) == {"status": "failed"}
    assert env.events() == []


@pytest.mark.parametrize(("operation", "failing_call"), [("UploadPart", 2), ("CompleteMultipartUpload", 1)])
def test_an_s3_failure_mid_upload_is_transient_leaves_nothing_and_the_retry_stores_one_object(
    env: Env, foreign_server: ScriptedServer, operation: str, failing_call: int
) -> None:
    from botocore.exceptions import ClientError

    from videogen.errors import TransientError

    submitted_job(env)
    big = MP4 + bytes(range(256)) * (9 * 1024 * 1024 // 256)  # two 8 MiB parts
    foreign_server.on("GET", "/files/v.mp4", Canned(200, big))
    calls = {"count": 0}

    def fail_once(params: dict[str, Any], **_: Any) -> None:
        calls["count"] += 1
        if calls["count"] == failing_call:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, operation)

    s3 = client("s3")
    s3.meta.events.register(f"before-call.s3.{operation}", fail_once)
    try:
        with pytest.raises(TransientError, match="InternalError"):
            invoke("download", download_event(f"{foreign_server.url}/files/v.mp4"))
    finally:
        s3.meta.events.unregister(f"before-call.s3.{operation}", fail_once)
    assert client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/")["KeyCount"] == 0
    assert job().status is JobStatus.SUBMITTED and env.events() == []

    # The state machine's retry: one complete object, one event.
    assert invoke("download", download_event(f"{foreign_server.url}/files/v.mp4")) == {"status": "completed"}
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/")["KeyCount"] == 1
    assert job().video is not None and job().video.bytes == len(big)  # type: ignore[union-attr]
    assert [e["detail-type"] for e in env.events()] == ["VideoCompleted"]
