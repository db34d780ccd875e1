"""API door: POST /videos, GET /videos/{id}, GET /models (API Gateway REST, IAM auth)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen import intake
from videogen.errors import RequestRejected
from videogen.models import Door
from videogen.observability import logger, metrics
from videogen.services import get_services

app = APIGatewayRestResolver()


def _caller() -> str:
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "anonymous"


@app.post("/videos")
def create_video() -> Response[dict[str, Any]]:
    job = intake.accept(get_services(), app.current_event.body, door=Door.API, caller=_caller())
    return Response(
        202,
        content_types.APPLICATION_JSON,
        {"id": job.id, "status": job.status.value},
        headers={"Location": f"/videos/{job.id}"},
    )


@app.get("/videos/<job_id>")
def get_video(job_id: str) -> Response[dict[str, Any]]:
    services = get_services()
    job = services.store.get(job_id)
    if job is None:
        return _error(404, f"no video job {job_id}")
    body = job.public()
    if job.video is not None:
        body["video"]["url"] = services.storage.presign(f"videos/{job.id}.mp4")
    return Response(200, content_types.APPLICATION_JSON, body)


@app.get("/models")
def list_models() -> dict[str, Any]:
    models = get_services().catalog.models() or {}
    return {"data": [model.model_dump(mode="json") for model in models.values()]}


@app.exception_handler(RequestRejected)  # type: ignore[untyped-decorator]
def rejected(exc: RequestRejected) -> Response[dict[str, Any]]:
    return Response(exc.status_code, content_types.APPLICATION_JSON, exc.to_body())


@app.not_found
def not_found(_: Exception) -> Response[dict[str, Any]]:
    return _error(404, f"no route for {app.current_event.http_method} {app.current_event.path}")


def _error(status: int, message: str) -> Response[dict[str, Any]]:
    return Response(status, content_types.APPLICATION_JSON, {"error": {"code": status, "message": message}})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
