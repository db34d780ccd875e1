"""API door (API Gateway REST, IAM auth): create, read, list and cancel video jobs; list models; read and
rotate the caller's webhook signing secret; the service's health (the credit breaker's state).

A job belongs to the IAM principal that created it, an assumed role as the role (videogen.owners): anyone
else gets 404, as if it did not exist. ``Idempotency-Key`` makes a retried POST answer with the job the
first attempt made. ``/operator/videos/{id}`` reads any job, for principals IAM allows on that route.
"""

from __future__ import annotations

import base64
import re
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen import batches, compat, intake
from videogen.cancel import cancel_job
from videogen.errors import FieldError, RequestRejected
from videogen.intake import RequestIdentity
from videogen.keys import tenant_owner
from videogen.models import Door, Job, JobStatus
from videogen.observability import logger, metrics, tracer
from videogen.openapi import openapi_document
from videogen.owners import Owner, iam_owner, owns
from videogen.services import get_services
from videogen.storage import parse_s3_uri
from videogen.webhooks import SecretView

app = APIGatewayRestResolver()
MAX_PAGE = 100
MAX_IDEMPOTENCY_KEY_CHARS = 255
DEFAULT_PAGE = 20
# The methods of each path (the template sends every other method here too, to be answered 405).
ALLOWED_METHODS = (
    (re.compile(r"/videos/?"), "GET, POST"),
    (re.compile(r"/videos/[^/]+/?"), "GET, DELETE"),
    (re.compile(r"/batches/?"), "POST"),
    (re.compile(r"/batches/[^/]+/?"), "GET, DELETE"),
    (re.compile(r"/batches/[^/]+/jobs/?"), "GET"),
)


def _owner() -> Owner:
    user_arn = app.current_event.request_context.identity.user_arn
    if not user_arn:
        # API Gateway's IAM authorizer always names the caller; without one there is no owner to act for.
        raise RequestRejected("no caller identity", [FieldError("Authorization", "sign the request (SigV4)")], 403)
    return iam_owner(user_arn)


def _own_job(job_id: str) -> Job | None:
    job = get_services().store.get(job_id)
    return job if job is not None and owns(_owner().id, job.caller) else None


def _idempotency(owner: Owner) -> RequestIdentity | None:
    key = app.current_event.get_header_value("Idempotency-Key", case_sensitive=False)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        raise RequestRejected(
            "invalid Idempotency-Key",
            [FieldError("Idempotency-Key", f"1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters")],
            400,
            reason="malformed",
        )
    return RequestIdentity(Door.API, owner.id, key, field="Idempotency-Key")


def _view(job: Job) -> dict[str, Any]:
    body = job.public()
    if job.video is not None:
        bucket, key = parse_s3_uri(job.video.s3_uri)
        body["video"]["url"] = get_services().storage.presign(key, bucket)
    return body


def _request_body() -> str | bytes | None:
    """The body as the caller sent it: API Gateway base64-encodes bodies it treats as binary."""
    event = app.current_event
    try:
        return event.decoded_body
    except UnicodeDecodeError:
        # Valid base64 of bytes that are not UTF-8: parse_request refuses them with its own reason.
        return base64.b64decode(event.body or "")
    except ValueError:
        raise RequestRejected(
            "request body is not valid base64",
            [FieldError("body", "isBase64Encoded is set but the body is not base64")],
            400,
            reason="malformed",
        ) from None


@app.post("/videos")
def create_video() -> Response[dict[str, Any]]:
    owner = _owner()
    accepted = intake.accept(get_services(), _request_body(), door=Door.API, owner=owner, identity=_idempotency(owner))
    # The path the caller can GET: the stage is part of the URL (/v1/videos/<id>) when deployed.
    stage = app.current_event.request_context.stage
    headers = {"Location": f"/{stage}/videos/{accepted.job.id}" if stage else f"/videos/{accepted.job.id}"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    # A replay answers as the first attempt did: the job was queued then, whatever it is doing now.
    return Response(
        202,
        content_types.APPLICATION_JSON,
        {
            "id": accepted.job.id,
            "status": JobStatus.QUEUED.value,
            "estimated_cost_usd": accepted.job.estimated_cost_usd,
        },
        headers=headers,
    )


@app.get("/videos")
def list_videos() -> Response[dict[str, Any]]:
    query = app.current_event.query_string_parameters or {}
    status = _status_filter(query.get("status"))
    limit = _limit(query.get("limit"))
    try:
        jobs, next_token = get_services().store.list_by_caller(
            _owner().id, status=status, limit=limit, page_token=query.get("next_token")
        )
    except ValueError as exc:  # the only caller-supplied value the store checks
        raise RequestRejected(str(exc), [FieldError("next_token", "not a token from this listing")]) from None
    return Response(200, content_types.APPLICATION_JSON, {"items": [_view(j) for j in jobs], "next_token": next_token})


def _status_filter(status: str | None) -> str | None:
    if status is not None and status not in {s.value for s in JobStatus}:
        raise RequestRejected(
            f"unknown status {status!r}",
            [FieldError("status", f"one of {', '.join(s.value for s in JobStatus)}")],
        )
    return status


def _limit(raw: str | None) -> int:
    """``limit`` is a plain decimal integer within 1..MAX_PAGE; anything else is the caller's mistake, not
    something to round, clamp or parse as a float."""
    if raw is None:
        return DEFAULT_PAGE
    if re.fullmatch(r"[0-9]{1,3}", raw) and 1 <= int(raw) <= MAX_PAGE:
        return int(raw)
    raise RequestRejected(f"invalid limit {raw[:20]!r}", [FieldError("limit", f"an integer from 1 to {MAX_PAGE}")])


@app.get("/videos/<job_id>")
def get_video(job_id: str) -> Response[dict[str, Any]]:
    job = _own_job(job_id)
    if job is None:
        return _error(404, f"no video job {job_id}")
    return Response(200, content_types.APPLICATION_JSON, _view(job))


@app.delete("/videos/<job_id>")
def cancel_video(job_id: str) -> Response[dict[str, Any]]:
    job = _own_job(job_id)
    if job is None:
        return _error(404, f"no video job {job_id}")
    result = cancel_job(get_services(), job)
    if not result.cancelled:
        return _error(409, f"video job {job_id} already ended as {result.job.status.value}")
    return Response(200, content_types.APPLICATION_JSON, _view(result.job))


# --- batches (videogen.batches) ----------------------------------------------------------------------


def _own_batch(batch_id: str) -> batches.Batch | None:
    batch = batches.batch_store(get_services()).get(batch_id)
    return batch if batch is not None and owns(_owner().id, batch.owner) else None


def _batch_view(batch: batches.Batch) -> dict[str, Any]:
    body = batch.view()
    if batch.results:
        bucket, key = parse_s3_uri(batch.results)
        body["results_url"] = get_services().storage.presign(key, bucket)
    return body


@app.post("/batches")
def create_batch() -> Response[dict[str, Any]]:
    owner = _owner()
    identity = _idempotency(owner)
    batch, replayed = batches.start_api_batch(
        get_services(), owner, _request_body(), identity.key if identity is not None else None
    )
    stage = app.current_event.request_context.stage
    headers = {"Location": f"/{stage}/batches/{batch.batch_id}" if stage else f"/batches/{batch.batch_id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(202, content_types.APPLICATION_JSON, _batch_view(batch), headers=headers)


@app.get("/batches/<batch_id>")
def get_batch(batch_id: str) -> Response[dict[str, Any]]:
    batch = _own_batch(batch_id)
    if batch is None:
        return _error(404, f"no batch {batch_id}")
    return Response(200, content_types.APPLICATION_JSON, _batch_view(batch))


@app.get("/batches/<batch_id>/jobs")
def list_batch_jobs(batch_id: str) -> Response[dict[str, Any]]:
    batch = _own_batch(batch_id)
    if batch is None:
        return _error(404, f"no batch {batch_id}")
    query = app.current_event.query_string_parameters or {}
    status = _status_filter(query.get("status"))
    try:
        jobs, next_token = batches.batch_store(get_services()).jobs(
            batch_id, status=status, limit=_limit(query.get("limit")), page_token=query.get("next_token")
        )
    except ValueError as exc:
        raise RequestRejected(str(exc), [FieldError("next_token", "not a token from this listing")]) from None
    return Response(200, content_types.APPLICATION_JSON, {"items": [_view(j) for j in jobs], "next_token": next_token})


@app.delete("/batches/<batch_id>")
def cancel_batch(batch_id: str) -> Response[dict[str, Any]]:
    batch = _own_batch(batch_id)
    if batch is None:
        return _error(404, f"no batch {batch_id}")
    if batch.finished_at:
        return _error(409, f"batch {batch_id} already finished")
    cancelled = batches.request_cancel(get_services(), batch_id)
    return Response(202, content_types.APPLICATION_JSON, _batch_view(cancelled or batch))


@app.get("/operator/videos/<job_id>")
def operator_get_video(job_id: str) -> Response[dict[str, Any]]:
    """Any job, whoever owns it (the S3 and EventBridge doors' jobs have no IAM owner). Who may call this
    route is IAM's decision: grant execute-api:Invoke on .../GET/operator/* to operators only."""
    job = get_services().store.get(job_id)
    if job is None:
        return _error(404, f"no video job {job_id}")
    return Response(200, content_types.APPLICATION_JSON, _view(job))


@app.get("/operator/batches/<batch_id>")
def operator_get_batch(batch_id: str) -> Response[dict[str, Any]]:
    """Any batch, whoever owns it (the S3 door's batches are owned by ``s3:<bucket>``); IAM decides who may
    call it, as for /operator/videos."""
    batch = batches.batch_store(get_services()).get(batch_id)
    if batch is None:
        return _error(404, f"no batch {batch_id}")
    return Response(200, content_types.APPLICATION_JSON, _batch_view(batch))


# --- OpenRouter's video API (videogen.compat), for tenant API keys (the key authorizer) -----------------


def _compatible() -> bool:
    return app.current_event.path.startswith("/api/v1/")


def _tenant() -> Owner:
    """The key's owner, from the key authorizer's context (its tenant, or the IAM principal it was issued
    for); the routes have no IAM caller."""
    context = app.current_event.raw_event.get("requestContext", {}).get("authorizer") or {}
    if context.get("owner"):
        return Owner(str(context["owner"]))
    if not context.get("tenant"):
        raise RequestRejected(compat.UNAUTHORIZED_MESSAGE, status_code=401, reason="unauthorized")
    return Owner(tenant_owner(context["tenant"]))


def _own_compatible_job(job_id: str) -> Job:
    job = get_services().store.get(job_id)
    if job is None or not owns(_tenant().id, job.caller):
        raise RequestRejected(f"no video job {job_id}", status_code=404, reason="not_found")
    return job


def _gateway_url() -> str:
    """This gateway's absolute URL as the caller reached it (custom domain and stage included), without
    /api/v1: what its polling and content URLs are built on."""
    event = app.current_event
    proto = event.get_header_value("X-Forwarded-Proto", default_value="https", case_sensitive=False) or "https"
    host = event.get_header_value("Host", default_value="", case_sensitive=False) or event.request_context.domain_name
    full_path = event.request_context.path or event.path
    prefix = full_path[: len(full_path) - len(event.path)] if full_path.endswith(event.path) else ""
    return f"{proto}://{host}{prefix}"


@app.post("/api/v1/videos")
def compatible_create_video() -> Response[dict[str, Any]]:
    owner = _tenant()
    accepted = intake.accept(get_services(), _request_body(), door=Door.API, owner=owner, identity=_idempotency(owner))
    return Response(202, content_types.APPLICATION_JSON, compat.generation(accepted.job, _gateway_url()))


@app.get("/api/v1/videos/models")
def compatible_list_models() -> dict[str, Any]:
    _tenant()
    return _models()  # as OpenRouter returns it


@app.get("/api/v1/videos/<job_id>")
def compatible_get_video(job_id: str) -> Response[dict[str, Any]]:
    return Response(200, content_types.APPLICATION_JSON, compat.generation(_own_compatible_job(job_id), _gateway_url()))


@app.get("/api/v1/videos/<job_id>/content")
def compatible_video_content(job_id: str) -> Response[str]:
    """The video, as a redirect to S3 (videogen.compat.content_location)."""
    job = _own_compatible_job(job_id)
    index = app.current_event.get_query_string_value("index")
    location = compat.content_location(job, index, get_services().storage.presign)
    return Response(302, None, "", headers={"Location": location})  # no body


# --- webhook signing secrets (videogen.webhooks): the caller's own, on either API -------------------------


def _secret(view: SecretView) -> Response[dict[str, Any]]:
    return Response(200, content_types.APPLICATION_JSON, view.body(), headers={"Cache-Control": "no-store"})


@app.get("/webhooks/secret")
def webhook_secret() -> Response[dict[str, Any]]:
    return _secret(get_services().signing_keys.current(_owner().id))


@app.post("/webhooks/secret/rotate")
def rotate_webhook_secret() -> Response[dict[str, Any]]:
    return _secret(get_services().signing_keys.rotate(_owner().id))


@app.get("/api/v1/webhooks/secret")
def compatible_webhook_secret() -> Response[dict[str, Any]]:
    return _secret(get_services().signing_keys.current(_tenant().id))


@app.post("/api/v1/webhooks/secret/rotate")
def compatible_rotate_webhook_secret() -> Response[dict[str, Any]]:
    return _secret(get_services().signing_keys.rotate(_tenant().id))


@app.get("/openapi.json")
def openapi() -> dict[str, Any]:
    stage = app.current_event.request_context.stage
    return openapi_document(f"/{stage}" if stage else "/")


def _models() -> dict[str, Any]:
    models = get_services().catalog.models() or {}
    return {"data": [model.model_dump(mode="json") for model in models.values()]}


def _submission() -> dict[str, Any]:
    """The credit breaker's state (videogen.breaker): whether submissions to OpenRouter are paused."""
    breaker = get_services().breaker
    if breaker is None:
        return {"state": "closed", "breaker": "off"}
    return breaker.view(time.time()).body()


@app.get("/models")
def list_models() -> dict[str, Any]:
    """OpenRouter's models, and whether submissions to OpenRouter are paused (``submission``)."""
    return {**_models(), "submission": _submission()}


@app.get("/health")
def health() -> Response[dict[str, Any]]:
    """For operators and load balancers: 200 while jobs are accepted, which they are even while submission is
    paused (they wait, queued); ``submission.state`` says whether it is."""
    return Response(
        200,
        content_types.APPLICATION_JSON,
        {"status": "ok", "submission": _submission()},
        headers={"Cache-Control": "no-store"},
    )


@app.exception_handler(RequestRejected)  # type: ignore[untyped-decorator]
def rejected(exc: RequestRejected) -> Response[dict[str, Any]]:
    if _compatible():
        status, body = compat.rejection(exc)
        return Response(status, content_types.APPLICATION_JSON, body)
    return Response(exc.status_code, content_types.APPLICATION_JSON, exc.to_body())


@app.not_found
def not_found(_: Exception) -> Response[dict[str, Any]]:
    # The resolver calls this for a known path with an unsupported method too: that is a 405, not a 404.
    method, path = app.current_event.http_method, app.current_event.path
    message = f"no route for {method} {path}"
    if _compatible():
        return Response(404, content_types.APPLICATION_JSON, compat.error(404, message))
    for pattern, allowed in ALLOWED_METHODS:
        if pattern.fullmatch(path):
            return Response(
                405,
                content_types.APPLICATION_JSON,
                {"error": {"code": 405, "message": f"method {method} not allowed on {path}; allowed: {allowed}"}},
                headers={"Allow": allowed},
            )
    return _error(404, message)


def _error(status: int, message: str) -> Response[dict[str, Any]]:
    return Response(status, content_types.APPLICATION_JSON, {"error": {"code": status, "message": message}})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
