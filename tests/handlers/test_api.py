from __future__ import annotations

import copy
import json
from typing import Any

from tests.handlers.conftest import BUCKET, Env
from tests.support.handlers import invoke, sample_event
from videogen.aws import client


def post(body: Any) -> dict[str, Any]:
    event = sample_event("api_post_videos")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return invoke("api", event)


def get(job_id: str) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_get_video"))
    event["path"] = f"/videos/{job_id}"
    event["pathParameters"] = {"id": job_id}
    return invoke("api", event)


def test_post_sample_event_is_accepted_recorded_and_enqueued(env: Env) -> None:
    response = invoke("api", sample_event("api_post_videos"))
    assert response["statusCode"] == 202
    body = json.loads(response["body"])
    assert body["status"] == "queued" and len(body["id"]) == 32
    assert env.queued_job_ids() == [body["id"]]
    job = json.loads(get(body["id"])["body"])
    assert job["status"] == "queued" and job["request"]["duration"] == 4
    assert job["caller"] == "arn:aws:iam::123456789012:user/caller" and job["door"] == "api"
    assert job["polls"] == [] and job["video"] is None


def test_invalid_input_is_422_naming_the_field_and_nothing_is_written(env: Env) -> None:
    response = post({"prompt": "p", "duration": 3})
    assert response["statusCode"] == 422
    error = json.loads(response["body"])["error"]
    assert error["fields"][0]["field"] == "duration" and "supported" in error["fields"][0]["message"]
    response = post({"prompt": "p", "colour": "red"})
    assert response["statusCode"] == 422 and json.loads(response["body"])["error"]["fields"][0]["field"] == "colour"
    assert post("{not json")["statusCode"] == 400
    assert post({"prompt": "p", "model": "no/such-model"})["statusCode"] == 422
    assert env.queued_job_ids() == []
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0
    # Validation may read the model list, but nothing is ever submitted for bad input.
    assert env.openrouter.requests_to("/api/v1/videos") == []


def test_s3_references_must_exist_in_the_service_bucket(env: Env) -> None:
    def with_ref(url: str) -> dict[str, Any]:
        return {"prompt": "p", "input_references": [{"type": "image_url", "image_url": {"url": url}}]}

    assert post(with_ref(f"s3://{BUCKET}/references/missing.png"))["statusCode"] == 422
    assert post(with_ref("s3://someone-elses-bucket/secret.png"))["statusCode"] == 422
    client("s3").put_object(Bucket=BUCKET, Key="references/backpack.png", Body=b"\x89PNG")
    assert post(with_ref(f"s3://{BUCKET}/references/backpack.png"))["statusCode"] == 202


def test_unknown_job_is_404_and_unknown_route_is_404(env: Env) -> None:
    response = get("does-not-exist")
    assert response["statusCode"] == 404 and "does-not-exist" in json.loads(response["body"])["error"]["message"]
    event = sample_event("api_get_models")
    event["path"] = event["resource"] = "/nothing"
    assert invoke("api", event)["statusCode"] == 404


def test_models_lists_openrouter_models(env: Env) -> None:
    response = invoke("api", sample_event("api_get_models"))
    assert response["statusCode"] == 200
    models = json.loads(response["body"])["data"]
    assert models[0]["id"] == "bytedance/seedance-2.0-fast" and models[0]["supported_resolutions"] == ["480p", "720p"]
