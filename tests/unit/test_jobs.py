"""JobStore on moto: forward-only status, one owner of the outcome, submission claims."""

from __future__ import annotations

import pytest

from videogen.jobs import Claim, JobExists, JobStore
from videogen.models import Job, JobStatus, OpenRouterJob, Usage, VideoObject, VideoRequest

pytestmark = pytest.mark.usefixtures("aws")


def new_job(store: JobStore, job_id: str = "j1") -> Job:
    job = Job(id=job_id, status=JobStatus.QUEUED, request=VideoRequest(prompt="p"))
    store.create(job)
    return job


def test_create_is_idempotent_only_once() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    with pytest.raises(JobExists):
        new_job(store)
    job = store.get("j1")
    assert job is not None and job.status is JobStatus.QUEUED and job.request.prompt == "p"


def test_claim_then_busy_then_stale() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    assert store.claim_submission("j1", now=1000.0, claim_seconds=120) is Claim.CLAIMED
    assert store.claim_submission("j1", now=1010.0, claim_seconds=120) is Claim.BUSY
    assert store.claim_submission("j1", now=1200.0, claim_seconds=120) is Claim.STALE


def test_released_claim_counts_attempts_and_can_be_taken_again() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    store.claim_submission("j1", now=1.0, claim_seconds=120)
    assert store.release_claim("j1", "connection refused") == 1
    assert store.claim_submission("j1", now=2.0, claim_seconds=120) is Claim.CLAIMED
    assert store.release_claim("j1", "429") == 2


def test_submitted_job_is_done_for_claims_and_polls_append() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    store.claim_submission("j1", now=1.0, claim_seconds=120)
    job = store.mark_submitted("j1", OpenRouterJob(id="or-1", status="pending"), "https://x/api/v1/videos/or-1")
    assert job.status is JobStatus.SUBMITTED and job.openrouter_job_id == "or-1"
    assert store.claim_submission("j1", now=2.0, claim_seconds=120) is Claim.DONE
    store.record_poll("j1", OpenRouterJob(id="or-1", status="pending"))
    polled = store.record_poll("j1", OpenRouterJob(id="or-1", status="in_progress"))
    assert polled is not None and polled.polls == ["pending", "in_progress"] and polled.status is JobStatus.IN_PROGRESS
    done = store.record_poll("j1", OpenRouterJob(id="or-1", status="completed", usage=Usage(cost=0.2)))
    assert done is not None and done.status is JobStatus.IN_PROGRESS and done.usage == Usage(cost=0.2)


def test_terminal_status_never_changes_and_only_the_first_finish_makes_the_transition() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    video = VideoObject(s3_uri="s3://b/videos/j1.mp4", bytes=10, sha256="0" * 64)
    first = store.finish("j1", JobStatus.COMPLETED, video=video)
    assert first is not None and first.video == video and first.finished_at
    # A retry of the same step, or a racing one, changes nothing: the stream saw one transition.
    assert store.finish("j1", JobStatus.COMPLETED, video=video) is None
    assert store.finish("j1", JobStatus.FAILED, error="late failure") is None
    assert store.record_poll("j1", OpenRouterJob(id="or-1", status="in_progress")) is None
    final = store.get("j1")
    assert final is not None and final.status is JobStatus.COMPLETED and final.error is None
    assert final.finished_at == first.finished_at


def test_the_event_is_recorded_once() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    store.finish("j1", JobStatus.FAILED, error="boom")
    assert store.mark_event_published("j1") is True
    stamped = (store.raw("j1") or {})["event_published_at"]
    assert store.mark_event_published("j1") is False
    assert (store.raw("j1") or {})["event_published_at"] == stamped


def test_unannounced_lists_ended_jobs_without_their_event_before_the_cutoff() -> None:
    store = JobStore("videogen-jobs")
    for job_id in ("running", "announced", "silent", "recent"):
        new_job(store, job_id)
    for job_id in ("announced", "silent"):
        store.finish(job_id, JobStatus.FAILED, error="boom")
    store.mark_event_published("announced")
    later = "9999-01-01T00:00:00.000Z"
    assert [item["id"] for item in store.unannounced(later)] == ["silent"]
    store.finish("recent", JobStatus.COMPLETED)
    assert sorted(item["id"] for item in store.unannounced(later)) == ["recent", "silent"]
    assert store.unannounced("2000-01-01T00:00:00.000Z") == []


def test_a_different_terminal_status_cannot_take_over_even_before_the_event() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    assert store.finish("j1", JobStatus.CANCELLED, error="cancelled by caller") is not None
    assert store.finish("j1", JobStatus.COMPLETED) is None
    job = store.get("j1")
    assert job is not None and job.status is JobStatus.CANCELLED


def test_transitions_on_a_missing_job_do_nothing() -> None:
    store = JobStore("videogen-jobs")
    assert store.finish("ghost", JobStatus.FAILED, error="x") is None
    assert store.get("ghost") is None


def test_download_claim_is_exclusive_reentrant_for_its_owner_and_taken_over_when_stale() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    assert store.claim_download("j1", "workflow", now=1000.0, claim_seconds=900)
    assert not store.claim_download("j1", "callback:m1", now=1001.0, claim_seconds=900)
    assert store.claim_download("j1", "workflow", now=1002.0, claim_seconds=900)  # its own retry
    assert store.claim_download("j1", "callback:m1", now=1903.0, claim_seconds=900)  # the holder died
    store.release_download("j1", "workflow")  # not the holder any more: changes nothing
    assert not store.claim_download("j1", "workflow", now=1904.0, claim_seconds=900)
    store.release_download("j1", "callback:m1")
    assert store.claim_download("j1", "workflow", now=1905.0, claim_seconds=900)
    store.finish("j1", JobStatus.COMPLETED)
    assert not store.claim_download("j1", "workflow", now=1906.0, claim_seconds=900)


def test_a_job_is_found_by_openrouter_job_id_once_submitted() -> None:
    store = JobStore("videogen-jobs")
    new_job(store)
    new_job(store, "j2")
    assert store.find_by_openrouter_id("or-1") is None
    store.mark_submitted("j1", OpenRouterJob(id="or-1", status="pending"), "https://x/api/v1/videos/or-1")
    assert store.find_by_openrouter_id("or-1") == "j1"
    assert store.find_by_openrouter_id("or-2") is None
