"""Log lines belong to their own job (issue 10, part 6): a warm container's next invocation, and a batch's
next record, never log under an earlier job's id."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.handlers.conftest import Env
from tests.handlers.test_api import post
from tests.handlers.test_workflow_steps import ACCEPTED
from tests.support.handlers import invoke, sample_event
from tests.support.scripted_http import Canned
from videogen.jobs import JobStore
from videogen.models import Job, JobStatus, VideoRequest
from videogen.observability import annotate_job, job_log_scope, logger

Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines(monkeypatch: pytest.MonkeyPatch) -> Lines:
    """The service logger's JSON lines since the last call. Powertools' handler keeps the stdout it was
    created with, so its stream is pointed at a buffer (capsys would miss lines of a logger built earlier)."""
    buffer = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", buffer)

    def read() -> list[dict[str, Any]]:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    return read


def job_ids(lines: list[dict[str, Any]]) -> list[str | None]:
    return [line.get("job_id") for line in lines]


def test_each_api_invocation_logs_under_its_own_job_or_none(env: Env, log_lines: Lines) -> None:
    first = json.loads(post({"prompt": "one"})["body"])["id"]
    lines = log_lines()
    assert lines and set(job_ids(lines)) <= {first, None} and first in job_ids(lines)

    second = json.loads(post({"prompt": "two"})["body"])["id"]
    lines = log_lines()
    assert set(job_ids(lines)) <= {second, None} and second in job_ids(lines)

    assert post({"prompt": "p", "colour": "red"})["statusCode"] == 422
    lines = log_lines()
    assert any(line["message"] == "request rejected" for line in lines)
    assert job_ids(lines) == [None] * len(lines)  # no longer under "two"'s id

    invoke("api", sample_event("api_get_models"))
    assert all(line.get("job_id") is None for line in log_lines())


def queued(job_id: str) -> None:
    JobStore("videogen-jobs").create(Job(id=job_id, status=JobStatus.QUEUED, request=VideoRequest(prompt=job_id)))


def sqs_batch(*job_ids: str) -> dict[str, Any]:
    template = sample_event("sqs_submit")["Records"][0]
    records = []
    for index, job_id in enumerate(job_ids):
        record = copy.deepcopy(template)
        record["messageId"] = f"m{index}"
        record["body"] = json.dumps({"job_id": job_id})
        records.append(record)
    return {"Records": records}


def test_a_submit_batch_logs_each_record_under_its_own_job(env: Env, log_lines: Lines) -> None:
    env.openrouter.on("POST", "/api/v1/videos", Canned(202, ACCEPTED))
    for job_id in ("job-a", "job-b", "job-c"):
        queued(job_id)
    assert invoke("submit", sqs_batch("job-a", "job-b")) == {"batchItemFailures": []}
    ids = [i for i in job_ids(log_lines()) if i is not None]
    # Every record's lines in turn: once job-b's start, none carries job-a's id.
    assert ids and ids == sorted(ids) and set(ids) == {"job-a", "job-b"}

    assert invoke("submit", sqs_batch("job-c")) == {"batchItemFailures": []}
    lines = log_lines()
    assert set(job_ids(lines)) <= {"job-c", None}
    # The openrouter_job_id added during job-b's record went with it.
    assert all(line.get("openrouter_job_id") in (None, ACCEPTED["id"]) for line in lines)
    assert all(line.get("job_id") == "job-c" for line in lines if "openrouter_job_id" in line)


def test_a_publish_batch_logs_each_record_under_its_own_job(env: Env, log_lines: Lines) -> None:
    store = JobStore("videogen-jobs")
    for job_id in ("job-a", "job-b"):
        queued(job_id)
        store.finish(job_id, JobStatus.FAILED, error="boom")
    env.events()  # relays the stream to the publish function in one batch
    ids = [i for i in job_ids(log_lines()) if i is not None]
    assert ids == sorted(ids) and set(ids) <= {"job-a", "job-b"}
    invoke("api", sample_event("api_get_models"))
    assert all(line.get("job_id") is None for line in log_lines())


def test_poll_and_fail_invocations_do_not_inherit_the_previous_job(env: Env, log_lines: Lines) -> None:
    queued("job-a")
    invoke("fail", {"job_id": "job-a", "status": "failed", "error": "e"})
    assert set(job_ids(log_lines())) <= {"job-a", None}
    # An invocation that names no job (an execution event without one) must not log under job-a.
    invoke("api", sample_event("api_get_models"))
    assert all(line.get("job_id") is None for line in log_lines())


def test_job_log_scope_removes_keys_added_inside_it(log_lines: Lines) -> None:
    with job_log_scope("job-a"):
        annotate_job("job-a", "or-1")
        logger.info("inside")
    logger.info("outside")
    inside, outside = log_lines()
    assert inside["job_id"] == "job-a" and inside["openrouter_job_id"] == "or-1"
    assert "job_id" not in outside and "openrouter_job_id" not in outside
