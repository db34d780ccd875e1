"""Local mode's key authorizer: API Gateway's policy evaluation and cache, around the real function."""

from __future__ import annotations

import io
import json
from typing import Any

from videogen_local.localmode.authorizer import ACCESS_DENIED_BODY, UNAUTHORIZED_BODY, LocalAuthorizer

PREFIX = "arn:aws:execute-api:us-east-1:123456789012:local/v1"


class FakeLambda:
    """Answers as the authorizer function would: a policy for good keys, ``Unauthorized`` for others."""

    def __init__(self, resource: str = f"{PREFIX}/*/api/v1/*", effect: str = "Allow") -> None:
        self.resource, self.effect, self.calls = resource, effect, 0
        self.good = {"Bearer good"}

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        self.calls += 1
        event = json.loads(Payload)
        assert event["type"] == "REQUEST" and event["methodArn"].startswith(PREFIX)
        if event["headers"].get("Authorization") not in self.good:
            body = {"errorMessage": "Unauthorized", "errorType": "Unauthorized"}
            return {"FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": self.effect, "Resource": [self.resource]}],
        }
        answer = {"principalId": "tenant:acme", "policyDocument": policy, "context": {"tenant": "acme"}}
        return {"Payload": io.BytesIO(json.dumps(answer).encode())}


def decide(authorizer: LocalAuthorizer, token: str | None, path: str = "/api/v1/videos", method: str = "GET") -> Any:
    headers = {"Authorization": token} if token is not None else {}
    return authorizer.decide(method, path, headers, {})


def test_an_allowed_key_passes_its_context_on() -> None:
    decision = decide(LocalAuthorizer(FakeLambda(), "fn", PREFIX), "Bearer good")
    assert decision.status == 200 and decision.authorizer_context == {"tenant": "acme", "principalId": "tenant:acme"}


def test_missing_and_refused_keys_get_the_gateways_401() -> None:
    fake = FakeLambda()
    authorizer = LocalAuthorizer(fake, "fn", PREFIX)
    assert decide(authorizer, None).body == UNAUTHORIZED_BODY and fake.calls == 0  # no identity source: no call
    assert (decide(authorizer, "Bearer bad").status, fake.calls) == (401, 1)
    assert (decide(authorizer, "Bearer bad").status, fake.calls) == (401, 2)  # a refusal is not cached


def test_a_policy_that_does_not_cover_the_route_is_403_and_deny_wins() -> None:
    narrow = LocalAuthorizer(FakeLambda(resource=f"{PREFIX}/GET/api/v1/videos/models"), "fn", PREFIX, 0)
    assert decide(narrow, "Bearer good", "/api/v1/videos/models").status == 200
    assert decide(narrow, "Bearer good", "/api/v1/videos").body == ACCESS_DENIED_BODY
    denied = LocalAuthorizer(FakeLambda(effect="Deny"), "fn", PREFIX, 0)
    assert decide(denied, "Bearer good").status == 403


def test_answers_are_cached_per_key_for_the_ttl() -> None:
    fake = FakeLambda()
    cached = LocalAuthorizer(fake, "fn", PREFIX, cache_seconds=60)
    for path in ("/api/v1/videos", "/api/v1/videos/abc", "/api/v1/videos/abc/content"):
        assert decide(cached, "Bearer good", path).status == 200
    assert fake.calls == 1
    fake.good.clear()  # the key is revoked: the cached answer still lets it in, as on API Gateway
    assert decide(cached, "Bearer good").status == 200
    uncached = LocalAuthorizer(fake, "fn", PREFIX, cache_seconds=0)
    assert decide(uncached, "Bearer good").status == 401
