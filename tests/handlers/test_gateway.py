"""The gateway on moto: the key authorizer, and OpenRouter's video API on /api/v1 for tenant keys."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.handlers.conftest import BUCKET, Env
from tests.handlers.test_api import request
from tests.support.handlers import invoke, sample_event
from videogen.aws import client
from videogen.keys import ApiKeys
from videogen.models import JobStatus, OpenRouterJob, Usage, VideoObject

KEYS = "videogen-keys"
GATEWAY = "https://abc123.execute-api.us-east-1.amazonaws.com/v1"


@pytest.fixture
def keys(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiKeys]:
    from videogen.services import reset_services
    from videogen_local.localmode.stack import create_keys_table

    create_keys_table(client("dynamodb"), KEYS)
    monkeypatch.setenv("KEYS_TABLE", KEYS)
    reset_services()
    yield ApiKeys(KEYS)


def authorize(key: str | None) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_authorizer_request"))
    if key is None:
        event["headers"].pop("Authorization")
    else:
        event["headers"]["Authorization"] = key
    result: dict[str, Any] = invoke("authorizer", event)
    return result


def test_a_key_is_authorized_for_every_compatible_route_as_its_tenant(keys: ApiKeys) -> None:
    issued = keys.create("acme")
    answer = authorize(f"Bearer {issued.key}")
    assert answer["principalId"] == "tenant:acme"
    assert answer["context"] == {"tenant": "acme", "key_id": issued.key_id, "owner": "tenant:acme"}
    [statement] = answer["policyDocument"]["Statement"]
    # Cached per key by API Gateway: the one policy must cover every compatible route, and only those.
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/api/v1/*"]


@pytest.mark.parametrize("presented", [None, "", "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "vg_x"])
def test_missing_or_malformed_keys_are_401(keys: ApiKeys, presented: str | None) -> None:
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(presented)


def test_unknown_and_revoked_keys_are_401_and_the_key_is_never_logged(
    keys: ApiKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    issued = keys.create("acme")
    keys.revoke(issued.key_id)
    for presented in (issued.key, issued.key[:-1] + ("A" if issued.key[-1] != "A" else "B")):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(f"Bearer {presented}")
    assert issued.key[len("vg_") + 17 :] not in capsys.readouterr().out


def compatible(
    method: str, path: str, tenant: str | None = "acme", body: Any = None, query: dict[str, str] | None = None
) -> dict[str, Any]:
    event = copy.deepcopy(sample_event("api_compatible_post_videos"))
    resource = path
    parts = path.strip("/").split("/")
    if len(parts) >= 4 and parts[3] != "models":
        resource = "/api/v1/videos/{id}" + ("/content" if len(parts) == 5 else "")
        event["pathParameters"] = {"id": parts[3]}
    else:
        event["pathParameters"] = None
    event.update(httpMethod=method, path=path, resource=resource, queryStringParameters=query)
    event["requestContext"].update(httpMethod=method, resourcePath=resource, path=f"/v1{path}")
    event["body"] = None if body is None else body if isinstance(body, str) else json.dumps(body)
    if tenant is None:
        event["requestContext"].pop("authorizer")
    else:
        event["requestContext"]["authorizer"] = {"principalId": f"tenant:{tenant}", "tenant": tenant}
    response: dict[str, Any] = invoke("api", event)
    return response


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response["body"])
    return body


def test_submit_answers_openrouters_response_with_an_absolute_polling_url(env: Env) -> None:
    response = compatible("POST", "/api/v1/videos", body={"model": "bytedance/seedance-2.0-fast", "prompt": "p"})
    assert response["statusCode"] == 202
    body = body_of(response)
    assert body == {"id": body["id"], "polling_url": f"{GATEWAY}/api/v1/videos/{body['id']}", "status": "pending"}
    [job] = client("dynamodb").scan(TableName="videogen-jobs")["Items"]
    assert job["caller"]["S"] == "tenant:acme" and job["door"]["S"] == "api"
    assert env.queued_job_ids() == [body["id"]]


def test_a_job_reads_in_openrouters_shape_and_its_content_redirects_to_s3(env: Env) -> None:
    from videogen.services import get_services

    job_id = body_of(compatible("POST", "/api/v1/videos", body={"prompt": "p"}))["id"]
    assert body_of(compatible("GET", f"/api/v1/videos/{job_id}"))["status"] == "pending"
    assert compatible("GET", f"/api/v1/videos/{job_id}/content")["statusCode"] == 409
    client("s3").put_object(Bucket=BUCKET, Key=f"videos/{job_id}.mp4", Body=b"\0\0\0\x18ftypmp42")
    store = get_services().store
    store.record_poll(job_id, OpenRouterJob(id="or-1", status="in_progress"))
    video = VideoObject(s3_uri=f"s3://{BUCKET}/videos/{job_id}.mp4", bytes=12, sha256="0" * 64)
    store.finish(job_id, JobStatus.COMPLETED, video=video, usage=Usage(cost=0.5))
    done = body_of(compatible("GET", f"/api/v1/videos/{job_id}"))
    assert done["status"] == "completed" and done["usage"] == {"cost": 0.5}
    assert done["unsigned_urls"] == [f"{GATEWAY}/api/v1/videos/{job_id}/content?index=0"]
    content = compatible("GET", f"/api/v1/videos/{job_id}/content", query={"index": "0"})
    assert content["statusCode"] == 302
    location = (content.get("multiValueHeaders", {}).get("Location") or [content["headers"]["Location"]])[0]
    assert urlsplit(location).path.endswith(f"videos/{job_id}.mp4")
    assert "X-Amz-Signature" in parse_qs(urlsplit(location).query)  # presigned, short-lived
    assert compatible("GET", f"/api/v1/videos/{job_id}/content", query={"index": "1"})["statusCode"] == 404
    assert compatible("GET", f"/api/v1/videos/{job_id}/content", query={"index": "x"})["statusCode"] == 400


@pytest.mark.parametrize(
    ("status", "error", "shown"),
    [
        (JobStatus.FAILED, "provider refused", ("failed", "provider refused")),
        (JobStatus.TIMED_OUT, None, ("failed", "the job ended timed_out")),
        (JobStatus.CANCELLED, "cancelled by the caller", ("cancelled", "cancelled by the caller")),
        (JobStatus.EXPIRED, "expired", ("expired", "expired")),
    ],
)
def test_statuses_map_onto_openrouters_enum(
    env: Env, status: JobStatus, error: str | None, shown: tuple[str, str]
) -> None:
    from videogen.services import get_services

    job_id = body_of(compatible("POST", "/api/v1/videos", body={"prompt": "p"}))["id"]
    get_services().store.finish(job_id, status, error=error)
    body = body_of(compatible("GET", f"/api/v1/videos/{job_id}"))
    assert (body["status"], body["error"]) == shown


def test_errors_come_in_openrouters_envelope_with_its_status_codes(env: Env) -> None:
    invalid = compatible("POST", "/api/v1/videos", body={"prompt": "p", "duration": 99})
    assert invalid["statusCode"] == 400  # OpenRouter's code for an invalid request (videogen's own API: 422)
    error = body_of(invalid)["error"]
    assert error["code"] == 400 and "duration" in error["message"]
    assert error["metadata"]["fields"][0]["field"] == "duration"
    assert compatible("POST", "/api/v1/videos", body="{not json")["statusCode"] == 400
    missing = compatible("GET", "/api/v1/videos/nope")
    assert missing["statusCode"] == 404 and body_of(missing)["error"]["code"] == 404
    assert body_of(compatible("GET", "/api/v1/nothing"))["error"]["code"] == 404
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0


def test_another_tenant_and_an_iam_caller_get_404(env: Env) -> None:
    job_id = body_of(compatible("POST", "/api/v1/videos", body={"prompt": "p"}))["id"]
    assert compatible("GET", f"/api/v1/videos/{job_id}", tenant="globex")["statusCode"] == 404
    assert compatible("GET", f"/api/v1/videos/{job_id}/content", tenant="globex")["statusCode"] == 404
    assert request("GET", f"/videos/{job_id}")["statusCode"] == 404  # an IAM principal is not the tenant
    # One job behind both APIs: the operator's read sees it, owned by the tenant.
    assert (
        body_of(request("GET", f"/operator/videos/{job_id}", resource="/operator/videos/{id}"))["caller"]
        == "tenant:acme"
    )


def test_without_the_authorizers_tenant_nothing_is_done(env: Env) -> None:
    response = compatible("POST", "/api/v1/videos", tenant=None, body={"prompt": "p"})
    assert response["statusCode"] == 401 and body_of(response)["error"]["code"] == 401
    assert client("dynamodb").scan(TableName="videogen-jobs")["Count"] == 0 and env.queued_job_ids() == []


def test_models_as_openrouter_lists_them(env: Env) -> None:
    models = body_of(compatible("GET", "/api/v1/videos/models"))["data"]
    assert models[0]["id"] == "bytedance/seedance-2.0-fast"


def test_a_key_issued_for_a_role_shares_its_jobs_with_the_roles_iam_calls(keys: ApiKeys) -> None:
    """One owner, two APIs: a job made through either is readable through both."""
    role_session = "arn:aws:sts::123456789012:assumed-role/catalog-renderer/ecs-task-1"
    issued = keys.create("renderer", iam_owner=role_session)
    context = authorize(f"Bearer {issued.key}")["context"]
    assert context["owner"] == "arn:aws:iam::123456789012:role/catalog-renderer"

    def as_key(method: str, path: str, body: Any = None) -> dict[str, Any]:
        event = copy.deepcopy(sample_event("api_compatible_post_videos"))
        event["requestContext"]["authorizer"] = {"principalId": context["owner"], **context}
        parts = path.strip("/").split("/")
        event.update(httpMethod=method, path=path, resource="/api/v1/videos/{id}" if len(parts) == 4 else path)
        event["pathParameters"] = {"id": parts[3]} if len(parts) == 4 else None
        event["body"] = None if body is None else json.dumps(body)
        response: dict[str, Any] = invoke("api", event)
        return response

    made_with_key = body_of(as_key("POST", "/api/v1/videos", {"prompt": "through the key"}))["id"]
    assert request("GET", f"/videos/{made_with_key}", role_session)["statusCode"] == 200
    made_with_iam = body_of(request("POST", "/videos", role_session, body=json.dumps({"prompt": "through IAM"})))["id"]
    assert body_of(as_key("GET", f"/api/v1/videos/{made_with_iam}"))["status"] == "pending"
    assert compatible("GET", f"/api/v1/videos/{made_with_iam}", tenant="renderer")["statusCode"] == 404
