"""The local stand-in for API Gateway's Lambda REQUEST authorizer on the OpenRouter-compatible routes.

As API Gateway does: the authorizer function (functions/authorizer) is invoked with a REQUEST event through
moto's Lambda API; an error whose message is ``Unauthorized`` is a 401, any other failure a 500; the policy
it returns is evaluated against the request's method ARN (an explicit Deny wins, else an Allow must match,
else 403); the answer is cached per Authorization header for ``cache_seconds`` (the template's
``ReauthorizeEvery``, 60 s), policy and context both, so a revoked key keeps working until its entry
expires, exactly as deployed. The gateway's 401 and 403 bodies are the template's GatewayResponses.
"""

from __future__ import annotations

import fnmatch
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The GatewayResponses of template.yaml (tests/template checks they agree).
UNAUTHORIZED_BODY = {
    "error": {
        "code": 401,
        "message": "Missing, malformed, unknown or revoked API key: send Authorization: Bearer vg_...",
        "metadata": None,
    }
}
ACCESS_DENIED_BODY = {"error": {"code": 403, "message": "This API key may not call this route", "metadata": None}}
AUTHORIZER_FAILED_BODY = {"error": {"code": 500, "message": "The authorizer failed", "metadata": None}}


@dataclass(frozen=True)
class Decision:
    status: int  # 200: go on; else the gateway's answer
    body: dict[str, Any] | None = None
    authorizer_context: dict[str, Any] | None = None  # requestContext.authorizer for the integration


class LocalAuthorizer:
    def __init__(
        self, lambda_client: Any, function_name: str, method_arn_prefix: str, cache_seconds: float = 60
    ) -> None:
        """``method_arn_prefix``: ``arn:aws:execute-api:<region>:<account>:<api id>/<stage>``."""
        self._lambda = lambda_client
        self._function = function_name
        self._prefix = method_arn_prefix
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.invocations = 0

    def decide(self, method: str, path: str, headers: Mapping[str, str], query: Mapping[str, str]) -> Decision:
        token = next((value for name, value in headers.items() if name.lower() == "authorization"), "")
        if not token:
            return Decision(401, UNAUTHORIZED_BODY)  # the identity source is missing: not even invoked
        method_arn = f"{self._prefix}/{method}{path}"
        answer = self._cached(token)
        if answer is None:
            event = {
                "type": "REQUEST",
                "methodArn": method_arn,
                "resource": path,
                "path": path,
                "httpMethod": method,
                "headers": dict(headers),
                "queryStringParameters": dict(query) or None,
                "requestContext": {"requestId": str(uuid.uuid4()), "httpMethod": method, "path": path},
            }
            response = self._lambda.invoke(FunctionName=self._function, Payload=json.dumps(event).encode())
            self.invocations += 1
            payload = json.loads(response["Payload"].read() or b"{}")
            if response.get("FunctionError"):
                if payload.get("errorMessage") == "Unauthorized":
                    return Decision(401, UNAUTHORIZED_BODY)  # not cached, as on API Gateway
                return Decision(500, AUTHORIZER_FAILED_BODY)
            answer = payload
            if self.cache_seconds > 0:
                with self._lock:
                    self._cache[token] = (time.monotonic() + self.cache_seconds, answer)
        if not _allows(answer.get("policyDocument") or {}, method_arn):
            return Decision(403, ACCESS_DENIED_BODY)
        context = {**(answer.get("context") or {}), "principalId": answer.get("principalId")}
        return Decision(200, None, context)

    def _cached(self, token: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._cache.get(token)
            if entry is None or entry[0] < time.monotonic():
                self._cache.pop(token, None)
                return None
            return entry[1]


def _allows(policy: dict[str, Any], method_arn: str) -> bool:
    """IAM's evaluation for execute-api:Invoke: an explicit Deny wins, else some Allow must match."""
    allowed = False
    for statement in policy.get("Statement", []):
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions):
            continue
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if any(fnmatch.fnmatchcase(method_arn, r) for r in resources):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed
