"""API door (API Gateway REST, IAM auth): create, read, list and cancel video jobs; list models.

A job belongs to the IAM principal that created it: anyone else gets 404, as if it did not exist.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen import intake
from videogen.cancel import cancel_job
from videogen.errors import FieldError, RequestRejected
from videogen.models import Door, Job, JobStatus
from videogen.observability import logger, metrics, tracer
from videogen.openapi import openapi_document
from videogen.services import get_services
from videogen.storage import parse_s3_uri

app = APIGatewayRestResolver()
MAX_PAGE = 100
DEFAULT_PAGE = 20
# The methods of each path (the template sends every other method here too, to be answered 405).
ALLOWED_METHODS = (
    (re.compile(r"/videos/?"), "GET, POST"),
    (re.compile(r"/videos/[^/]+/?"), "GET, DELETE"),
)


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "anonymous"


def _own_job(job_id: str) -> Job | None:
    job = get_services().store.get(job_id)
    return job if job is not None and job.caller == _caller() else None


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
    job = intake.accept(get_services(), _request_body(), door=Door.API, caller=_caller())
    # The path the caller can GET: the stage is part of the URL (/v1/videos/<id>) when deployed.
    stage = app.current_event.request_context.stage
    return Response(
        202,
        content_types.APPLICATION_JSON,
        {"id": job.id, "status": job.status.value},
        headers={"Location": f"/{stage}/videos/{job.id}" if stage else f"/videos/{job.id}"},
    )


@app.get("/videos")
def list_videos() -> Response[dict[str, Any]]:
    query = app.current_event.query_string_parameters or {}
    status = query.get("status")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise RequestRejected(
            f"unknown status {status!r}",
            [FieldError("status", f"one of {', '.join(s.value for s in JobStatus)}")],
        )
    limit = _limit(query.get("limit"))
    try:
        jobs, next_token = get_services().store.list_by_caller(
            _caller(), status=status, limit=limit, page_token=query.get("next_token")
        )
    except ValueError as exc:  # the only caller-supplied value the store checks
        raise RequestRejected(str(exc), [FieldError("next_token", "not a token from this listing")]) from None
    return Response(200, content_types.APPLICATION_JSON, {"items": [_view(j) for j in jobs], "next_token": next_token})


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


@app.get("/openapi.json")
def openapi() -> dict[str, Any]:
    stage = app.current_event.request_context.stage
    return openapi_document(f"/{stage}" if stage else "/")


@app.get("/models")
def list_models() -> dict[str, Any]:
    models = get_services().catalog.models() or {}
    return {"data": [model.model_dump(mode="json") for model in models.values()]}


@app.exception_handler(RequestRejected)  # type: ignore[untyped-decorator]
def rejected(exc: RequestRejected) -> Response[dict[str, Any]]:
    return Response(exc.status_code, content_types.APPLICATION_JSON, exc.to_body())


@app.not_found
def not_found(_: Exception) -> Response[dict[str, Any]]:
    # The resolver calls this for a known path with an unsupported method too: that is a 405, not a 404.
    method, path = app.current_event.http_method, app.current_event.path
    for pattern, allowed in ALLOWED_METHODS:
        if pattern.fullmatch(path):
            return Response(
                405,
                content_types.APPLICATION_JSON,
                {"error": {"code": 405, "message": f"method {method} not allowed on {path}; allowed: {allowed}"}},
                headers={"Allow": allowed},
            )
    return _error(404, f"no route for {method} {path}")


def _error(status: int, message: str) -> Response[dict[str, Any]]:
    return Response(status, content_types.APPLICATION_JSON, {"error": {"code": status, "message": message}})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
