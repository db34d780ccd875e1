"""Budgets on moto: concurrent requests cannot overspend, refusals are 402 and write nothing, and a job's
reservation is settled with its real cost (or released) when it ends."""

from __future__ import annotations

import copy
import json
import threading
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.handlers.conftest import Env
from tests.support.handlers import invoke, sample_event
from tests.support.scripted_http import Canned
from videogen.aws import client
from videogen.budgets import Budgets
from videogen.errors import RequestRejected
from videogen.intake import accept
from videogen.models import Door, JobStatus, Usage
from videogen.owners import Owner
from videogen.services import get_services
from videogen_local.sim.server import SEEDANCE

OWNER = "arn:aws:iam::123456789012:user/caller"
TABLE = "videogen-budgets"
# The scripted Seedance prices video tokens; a 4 s 720p 16:9 video costs 0.12096 USD.
REQUEST = {"prompt": "p", "duration": 4, "resolution": "720p", "aspect_ratio": "16:9"}
ONE = Decimal("0.120960")


@pytest.fixture
def budgets(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Budgets]:
    from videogen.services import reset_services
    from videogen_local.localmode.stack import create_budgets_table

    create_budgets_table(client("dynamodb"), TABLE)
    monkeypatch.setenv("BUDGETS_TABLE", TABLE)
    env.openrouter.on("GET", "/api/v1/videos/models", Canned(200, {"data": [SEEDANCE]}))
    reset_services()
    yield Budgets(TABLE)


def post(body: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_post_videos"))
    event["body"] = json.dumps(body)
    response: dict[str, Any] = invoke("api", event)
    return response


def month(budgets: Budgets) -> dict[str, Any]:
    [entry] = budgets.show(OWNER)
    shown: dict[str, Any] = entry["month"]
    return shown


def test_the_estimate_comes_back_in_the_202_and_the_job(env: Env) -> None:
    env.openrouter.on("GET", "/api/v1/videos/models", Canned(200, {"data": [SEEDANCE]}))
    body = json.loads(post(REQUEST)["body"])
    assert body["estimated_cost_usd"] == float(ONE)
    job = get_services().store.get(body["id"])
    assert job is not None and job.estimated_cost_usd == float(ONE)


def test_fifty_concurrent_requests_fit_a_budget_for_ten(budgets: Budgets) -> None:
    budgets.set_limits(OWNER, ONE * 10)
    services = get_services()
    services.catalog.models()
    barrier = threading.Barrier(50)
    outcomes: list[str] = []

    def request(index: int) -> None:
        barrier.wait()
        try:
            accept(services, {**REQUEST, "prompt": f"p{index}"}, door=Door.API, owner=Owner(OWNER))
            outcomes.append("accepted")
        except RequestRejected as rejected:
            outcomes.append(str(rejected.status_code))
        except Exception as exc:  # shown by the assertion below
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["402"] * 40 + ["accepted"] * 10, Counter(outcomes)
    assert client("dynamodb").scan(TableName="videogen-jobs", Select="COUNT")["Count"] == 10
    assert month(budgets) == {"period": month(budgets)["period"], "reserved_usd": float(ONE * 10), "spent_usd": 0.0}


def test_a_request_over_budget_is_402_and_writes_nothing(budgets: Budgets, env: Env) -> None:
    budgets.set_limits(OWNER, ONE / 2)
    response = post(REQUEST)
    assert response["statusCode"] == 402
    assert json.loads(response["body"])["error"]["code"] == 402
    assert client("dynamodb").scan(TableName="videogen-jobs", Select="COUNT")["Count"] == 0
    assert env.queued_job_ids() == []


def test_a_daily_budget_holds_too(budgets: Budgets) -> None:
    budgets.set_limits(OWNER, ONE * 100, daily_usd=ONE)
    assert post(REQUEST)["statusCode"] == 202
    assert post(REQUEST)["statusCode"] == 402


def test_an_ended_job_settles_at_its_cost_and_a_job_never_sent_releases(budgets: Budgets, env: Env) -> None:
    from videogen.outbox import settle_budget

    budgets.set_limits(OWNER, Decimal(10))
    store = get_services().store
    billed = json.loads(post(REQUEST)["body"])["id"]
    never_sent = json.loads(post(REQUEST)["body"])["id"]
    assert month(budgets)["reserved_usd"] == float(ONE * 2)
    store.finish(billed, JobStatus.COMPLETED, usage=Usage(cost=0.1))
    store.finish(never_sent, JobStatus.CANCELLED, error="cancelled before it was sent")
    for job_id in (billed, never_sent, billed):  # the outbox's change delivered again: settled once
        job = store.get(job_id)
        assert job is not None
        settle_budget(get_services(), job)
    shown = month(budgets)
    assert shown["spent_usd"] == pytest.approx(0.1) and shown["reserved_usd"] == pytest.approx(0.0)
    [entry] = budgets.show(OWNER)  # the fields `videogen budgets show` names: limits, reserved, spent
    assert entry["limits"]["monthly_usd"] == 10 and entry["spent"] == pytest.approx(0.1) and entry["reserved"] == 0
