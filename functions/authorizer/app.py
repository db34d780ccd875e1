"""Key authorizer (API Gateway REQUEST authorizer) for the OpenRouter-compatible routes.

``Authorization: Bearer vg_…`` → the key's tenant, who owns the jobs the request makes or reads. A missing,
malformed, unknown or revoked key is refused with API Gateway's 401 (the exception message ``Unauthorized``
is how an authorizer asks for it); the gateway answers in OpenRouter's error envelope (GatewayResponses in
template.yaml). API Gateway caches an answer per Authorization header for 60 s (``ReauthorizeEvery``),
so the policy covers every compatible route, and a revoked key stops working within that time.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
    HttpVerb,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from videogen.keys import ApiKeys
from videogen.observability import logger, tracer
from videogen.services import get_services

COMPATIBLE_ROUTES = "/api/v1/*"


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__("Unauthorized")  # the exact message API Gateway turns into a 401


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def lambda_handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    scheme, _, key = (event.get_header_value("Authorization", case_sensitive=False) or "").partition(" ")
    record = (
        ApiKeys(get_services().settings.keys_table).authenticate(key.strip()) if scheme.lower() == "bearer" else None
    )
    if record is None:
        # Never the key itself: only why it was refused.
        logger.info("API key refused", extra={"reason": "no bearer key" if not key else "unknown or revoked key"})
        raise Unauthorized
    logger.append_keys(tenant=record.tenant, key_id=record.key_id)
    response = APIGatewayAuthorizerResponse.from_route_arn(
        event.method_arn,
        principal_id=record.owner,
        context={"tenant": record.tenant, "key_id": record.key_id, "owner": record.owner},
    )
    response.allow_route(http_method=HttpVerb.ALL.value, resource=COMPATIBLE_ROUTES)
    return response.asdict()
