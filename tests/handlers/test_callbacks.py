"""OpenRouter's callbacks on moto: the receiver (signature → one queued nudge, nothing else), the consumer
(nudge → the state machine's poll → its download), and every way a callback can repeat, lie or race."""

from __future__ import annotations

import base64
import copy
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.handlers.conftest import BUCKET, Env
from tests.handlers.test_workflow_steps import ACCEPTED, JOB_ID, MP4, download_event, job, poll_event, submitted_job
from tests.support.handlers import invoke, sample_event
from tests.support.scripted_http import Canned, ScriptedServer
from videogen.aws import client
from videogen.callbacks import sign
from videogen.errors import DownloadBusy
from videogen.jobs import JobStore
from videogen.models import JobStatus
from videogen.services import get_services, reset_services

SECRET = "whsec-handler-test"
POLL_PATH = "/api/v1/videos/job-abc123"


@pytest.fixture
def callbacks(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Callbacks on: the signing secret and the receiver's URL; returns the callback queue's URL."""
    queue_url = client("sqs").create_queue(QueueName="videogen-callback")["QueueUrl"]
    monkeypatch.setenv("OPENROUTER_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("OPENROUTER_CALLBACK_URL", "https://api.example/v1/webhooks/openrouter")
    monkeypatch.setenv("CALLBACK_QUEUE_URL", queue_url)
    reset_services()
    yield queue_url


def callback_event(body: bytes, header: str | None, *, encoded: bool = False) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_openrouter_callback"))
    event["body"] = base64.b64encode(body).decode() if encoded else body.decode("utf-8", errors="replace")
    event["isBase64Encoded"] = encoded
    if header is None:
        del event["headers"]["X-OpenRouter-Signature"]
    else:
        event["headers"]["X-OpenRouter-Signature"] = header
    return event


def body_for(openrouter_id: str = "job-abc123", status: str = "completed") -> bytes:
    return json.dumps({"type": f"video.generation.{status}", "data": {"id": openrouter_id, "status": status}}).encode()


def queued(queue_url: str) -> list[dict[str, Any]]:
    messages = client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def nudge_event(openrouter_id: str = "job-abc123", message_id: str = "m-1") -> dict[str, Any]:
    event = copy.deepcopy(sample_event("sqs_callback"))
    event["Records"][0]["body"] = json.dumps({"openrouter_job_id": openrouter_id, "idempotency_key": None})
    event["Records"][0]["messageId"] = message_id
    return event


def openrouter_polls(env: Env) -> int:
    return len([seen for seen in env.openrouter.seen if seen.method == "GET" and seen.path == POLL_PATH])


def completed_at_openrouter(env: Env, foreign_server: ScriptedServer, delay: float = 0.0) -> None:
    completed = {**ACCEPTED, "status": "completed", "unsigned_urls": [f"{foreign_server.url}/files/v.mp4"]}
    env.openrouter.on("GET", POLL_PATH, Canned(200, completed))
    foreign_server.on("GET", "/files/v.mp4", Canned(200, MP4, {"Content-Type": "video/mp4"}, delay=delay))


# --- the receiver ---------------------------------------------------------------------------------------


def test_a_signed_callback_is_acknowledged_and_becomes_one_nudge(callbacks: str) -> None:
    body = body_for()
    answer = invoke("openrouter_callback", callback_event(body, sign(SECRET, body, int(time.time()))))
    assert answer["statusCode"] == 200
    assert queued(callbacks) == [{"openrouter_job_id": "job-abc123", "idempotency_key": "job-abc123-completed"}]
    # API Gateway may hand the body over base64-encoded: the signature is over the decoded bytes.
    answer = invoke("openrouter_callback", callback_event(body, sign(SECRET, body, int(time.time())), encoded=True))
    assert answer["statusCode"] == 200 and len(queued(callbacks)) == 1


def test_a_refused_callback_enqueues_nothing(callbacks: str) -> None:
    # One test, not one per case: each case is a few milliseconds, the moto set-up seconds.
    body, now = body_for(), int(time.time())
    cases: dict[str, tuple[str | None, int]] = {
        "forged": (sign("not-the-secret", body, now), 401),
        "stale": (sign(SECRET, body, now - 600), 401),
        "future": (sign(SECRET, body, now + 600), 401),
        "unsigned": (None, 401),
        "malformed": ("t=soon,v1=xyz", 400),
        "bad_base64": (sign(SECRET, body, now), 400),
    }
    for case, (header, status) in cases.items():
        event = callback_event(body, header)
        if case == "bad_base64":
            event["isBase64Encoded"], event["body"] = True, "%%% not base64 %%%"
        answer = invoke("openrouter_callback", event)
        assert answer["statusCode"] == status, (case, answer)
    assert queued(callbacks) == []


def test_an_oversized_body_is_413_and_callbacks_off_is_401(callbacks: str, monkeypatch: pytest.MonkeyPatch) -> None:
    big = b'{"data": {"id": "x"}, "pad": "' + b"a" * 70_000 + b'"}'
    assert invoke("openrouter_callback", callback_event(big, sign(SECRET, big, int(time.time()))))["statusCode"] == 413
    monkeypatch.delenv("OPENROUTER_WEBHOOK_SECRET")
    reset_services()
    body = body_for()
    answer = invoke("openrouter_callback", callback_event(body, sign(SECRET, body, int(time.time()))))
    assert answer["statusCode"] == 401 and queued(callbacks) == []


def test_submit_asks_for_callbacks_only_with_a_signing_secret(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    submitted_job(env)
    [post] = env.openrouter.requests_to("/api/v1/videos")
    assert "callback_url" not in json.loads(post.body)
    JobStore("videogen-jobs").delete(JOB_ID)
    monkeypatch.setenv("OPENROUTER_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("OPENROUTER_CALLBACK_URL", "https://api.example/v1/webhooks/openrouter")
    reset_services()
    submitted_job(env)
    last = env.openrouter.requests_to("/api/v1/videos")[-1]
    assert json.loads(last.body)["callback_url"] == "https://api.example/v1/webhooks/openrouter"


# --- the consumer ---------------------------------------------------------------------------------------


def test_a_nudge_polls_downloads_and_the_state_machine_then_stops_without_openrouter(
    env: Env, callbacks: str, foreign_server: ScriptedServer
) -> None:
    submitted_job(env)
    completed_at_openrouter(env, foreign_server)
    assert invoke("callback_nudge", nudge_event()) == {"batchItemFailures": []}
    done = job()
    assert done.status is JobStatus.COMPLETED and done.polls == ["completed"]
    assert client("s3").get_object(Bucket=BUCKET, Key=f"videos/{JOB_ID}.mp4")["Body"].read() == MP4
    assert openrouter_polls(env) == 1
    # Repeats (the same delivery again, another delivery, a replay) change nothing and ask OpenRouter nothing.
    invoke("callback_nudge", nudge_event())
    invoke("callback_nudge", nudge_event(message_id="m-2"))
    # The state machine's next poll finds the job ended: it stops, and OpenRouter is not asked again.
    assert invoke("poll", poll_event(env, 1))["status"] == "ended"
    assert openrouter_polls(env) == 1 and job().polls == ["completed"]
    assert [e["detail-type"] for e in env.events()] == ["VideoCompleted"]


def test_an_early_or_lying_callback_changes_nothing_but_a_recorded_poll(env: Env, callbacks: str) -> None:
    """The body said completed; OpenRouter says in_progress: the poll loop carries on as before."""
    submitted_job(env)
    env.openrouter.on("GET", POLL_PATH, Canned(200, {**ACCEPTED, "status": "in_progress"}))
    invoke("callback_nudge", nudge_event())
    assert job().status is JobStatus.IN_PROGRESS and job().polls == ["in_progress"]
    assert client("s3").list_objects_v2(Bucket=BUCKET, Prefix="videos/")["KeyCount"] == 0
    assert env.events() == []


def test_a_failed_job_is_recorded_once_from_openrouters_answer(env: Env, callbacks: str) -> None:
    submitted_job(env)
    env.openrouter.on("GET", POLL_PATH, Canned(200, {**ACCEPTED, "status": "failed", "error": "moderation"}))
    invoke("callback_nudge", nudge_event())
    invoke("callback_nudge", nudge_event(message_id="m-2"))
    assert job().status is JobStatus.FAILED and job().error == "moderation"
    assert [e["detail-type"] for e in env.events()] == ["VideoFailed"]


def test_an_unknown_job_is_ignored(env: Env, callbacks: str) -> None:
    assert invoke("callback_nudge", nudge_event("or-nobody-knows")) == {"batchItemFailures": []}
    assert openrouter_polls(env) == 0 and env.events() == []
    # A message that is not a nudge at all goes towards the DLQ.
    event = nudge_event()
    event["Records"][0]["body"] = "{}"
    assert invoke("callback_nudge", event)["batchItemFailures"] == [{"itemIdentifier": "m-1"}]


def test_openrouter_down_during_a_nudge_leaves_the_job_to_the_poll_loop(env: Env, callbacks: str) -> None:
    submitted_job(env)
    env.openrouter.on("GET", POLL_PATH, Canned(503, {"error": {"code": 503, "message": "down"}}))
    assert invoke("callback_nudge", nudge_event()) == {"batchItemFailures": []}
    assert job().status is JobStatus.SUBMITTED and job().polls == []


# --- races with the poll loop ---------------------------------------------------------------------------


def _in_background(target: Any) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(target())
        except Exception as exc:  # the test asserts on what was raised
            result.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _wait_for_download_start(foreign_server: ScriptedServer) -> None:
    deadline = time.monotonic() + 10
    while not foreign_server.seen:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def _one_clean_video() -> None:
    assert client("s3").get_object(Bucket=BUCKET, Key=f"videos/{JOB_ID}.mp4")["Body"].read() == MP4
    assert client("s3").list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert job().status is JobStatus.COMPLETED and job().video is not None


def test_a_nudge_during_the_state_machines_download_leaves_it_alone(
    env: Env, callbacks: str, foreign_server: ScriptedServer
) -> None:
    submitted_job(env)
    completed_at_openrouter(env, foreign_server, delay=1.0)
    url = f"{foreign_server.url}/files/v.mp4"
    thread, result = _in_background(lambda: invoke("download", download_event(url)))
    _wait_for_download_start(foreign_server)
    assert invoke("callback_nudge", nudge_event()) == {"batchItemFailures": []}  # busy: acknowledged
    thread.join(timeout=30)
    assert result == [{"status": "completed"}]
    assert len(foreign_server.seen) == 1  # the nudge never started a second transfer
    _one_clean_video()
    assert [e["detail-type"] for e in env.events()] == ["VideoCompleted"]


def test_the_state_machines_download_during_a_nudges_goes_back_to_waiting(
    env: Env, callbacks: str, foreign_server: ScriptedServer
) -> None:
    submitted_job(env)
    completed_at_openrouter(env, foreign_server, delay=1.0)
    thread, result = _in_background(lambda: invoke("callback_nudge", nudge_event()))
    _wait_for_download_start(foreign_server)
    with pytest.raises(DownloadBusy):  # the state machine catches it and waits (tests/workflow)
        invoke("download", download_event(f"{foreign_server.url}/files/v.mp4"))
    thread.join(timeout=30)
    assert result == [{"batchItemFailures": []}]
    _one_clean_video()
    assert invoke("poll", poll_event(env, 3))["status"] == "ended"
    assert [e["detail-type"] for e in env.events()] == ["VideoCompleted"]


def test_two_downloads_started_at_once_store_one_object(
    env: Env, callbacks: str, foreign_server: ScriptedServer
) -> None:
    """Without the claim the second would abort the first's multipart upload of the same key."""
    submitted_job(env)
    completed_at_openrouter(env, foreign_server, delay=0.5)
    url = f"{foreign_server.url}/files/v.mp4"
    runs = [
        _in_background(lambda: invoke("download", download_event(url))),
        _in_background(lambda: invoke("callback_nudge", nudge_event(message_id="m-9"))),
    ]
    for thread, _ in runs:
        thread.join(timeout=30)
    outcomes = [result[0] for _, result in runs]
    assert sum(isinstance(o, DownloadBusy) for o in outcomes) <= 1, outcomes
    assert len(foreign_server.seen) == 1
    _one_clean_video()
    assert [e["detail-type"] for e in env.events()] == ["VideoCompleted"]
    assert get_services().store.get(JOB_ID) is not None
