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
    assert job["poll_count"] == 0 and job["cost_usd"] is None and 0 <= job["elapsed_seconds"] < 60


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


def as_caller(event: dict[str, Any], caller: str) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["requestContext"]["identity"]["userArn"] = caller
    return event


def request(
    method: str, path: str, caller: str = "arn:aws:iam::123456789012:user/caller", **extra: Any
) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_get_video"))
    event.update(httpMethod=method, path=path, **extra)
    if path.startswith("/videos/"):
        event["resource"], event["pathParameters"] = "/videos/{id}", {"id": path.rsplit("/", 1)[1]}
    else:
        event["resource"], event["pathParameters"] = path, None
    response: dict[str, Any] = invoke("api", as_caller(event, caller))
    return response


def test_jobs_are_visible_to_their_caller_only(env: Env) -> None:
    job_id = json.loads(post({"prompt": "mine"})["body"])["id"]
    stranger = "arn:aws:iam::123456789012:user/stranger"
    assert request("GET", f"/videos/{job_id}", stranger)["statusCode"] == 404
    assert request("DELETE", f"/videos/{job_id}", stranger)["statusCode"] == 404
    assert json.loads(request("GET", "/videos", stranger)["body"])["items"] == []
    assert request("GET", f"/videos/{job_id}")["statusCode"] == 200


def test_listing_pages_newest_first_and_filters_by_status(env: Env) -> None:
    ids = [json.loads(post({"prompt": f"p{i}"})["body"])["id"] for i in range(5)]
    request("DELETE", f"/videos/{ids[0]}")
    seen: list[str] = []
    token = None
    while True:
        query = {"limit": "2", **({"next_token": token} if token else {})}
        page = json.loads(request("GET", "/videos", queryStringParameters=query)["body"])
        seen += [item["id"] for item in page["items"]]
        token = page["next_token"]
        if not token:
            break
    assert seen == list(reversed(ids))
    cancelled = json.loads(request("GET", "/videos", queryStringParameters={"status": "cancelled"})["body"])["items"]
    assert [item["id"] for item in cancelled] == [ids[0]]
    assert request("GET", "/videos", queryStringParameters={"status": "bogus"})["statusCode"] == 422
    assert request("GET", "/videos", queryStringParameters={"next_token": "garbage"})["statusCode"] == 422


def test_cancel_ends_the_job_once_with_one_event(env: Env) -> None:
    job_id = json.loads(post({"prompt": "p"})["body"])["id"]
    response = request("DELETE", f"/videos/{job_id}")
    assert response["statusCode"] == 200
    job = json.loads(response["body"])
    assert job["status"] == "cancelled" and "before it was sent" in job["error"]
    assert request("DELETE", f"/videos/{job_id}")["statusCode"] == 409
    assert [e["detail-type"] for e in env.events()] == ["VideoFailed"]


def test_a_loopback_reference_in_any_spelling_is_422_naming_the_field(env: Env) -> None:
    ref = {"type": "image_url", "image_url": {"url": "https://0x7f000001/a.png"}}
    response = post({"prompt": "p", "input_references": [ref]})
    assert response["statusCode"] == 422
    field = json.loads(response["body"])["error"]["fields"][0]
    assert field["field"] == "input_references[0].image_url.url"
    assert "127.0.0.1 is not a public address" in field["message"] and "0x7f000001" in field["message"]
    assert env.queued_job_ids() == [] and env.openrouter.requests_to("/api/v1/videos") == []
