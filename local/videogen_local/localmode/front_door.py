"""A local stand-in for API Gateway (REST, proxy integration): moto cannot run AWS_PROXY.

Each HTTP request becomes an API Gateway REST proxy event, the ``api`` function is invoked through
moto's Lambda API (as API Gateway invokes it), and the proxy response is written back. The caller's
identity, which API Gateway takes from the SigV4 signature, comes from the signing key when the request
is signed (iam_identity.py), else from the X-Videogen-Caller header. The OpenRouter-compatible routes go
through the key authorizer first (authorizer.py). Stage throttling (throttle.py) answers the template's 429
before anything else runs, and a route the template does not declare gets the gateway's 404 (its
MISSING_AUTHENTICATION_TOKEN response) without any function being invoked. With AWS faults on (chaos runs),
a share of the answers is dropped after the function ran: the connection is closed without a response
(aws_faults.AwsFaults.drop_response), and the caller has to retry.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from videogen_local.localmode import metrics
from videogen_local.localmode.authorizer import LocalAuthorizer
from videogen_local.localmode.iam_identity import InvalidSignature, SigV4Identities
from videogen_local.localmode.throttle import THROTTLED_BODY, TokenBucket

if TYPE_CHECKING:
    from videogen_local.localmode.aws_faults import AwsFaults

MAX_BODY_BYTES = 1024 * 1024


class _Listener(ThreadingHTTPServer):
    # socketserver's default backlog is 5: a burst of callers connecting at once (a service's retry storm, a
    # budget race) would see connections reset, which API Gateway never does.
    request_queue_size = 256
    daemon_threads = True


STAGE = "v1"
# OpenRouter's callbacks: a public route (template: Auth NONE) to its own function, the signature its only auth.
CALLBACK_PATH = "/webhooks/openrouter"
DEFAULT_CALLER = "arn:aws:iam::123456789012:user/local-developer"
# The routes of template.yaml (method, resource), as API Gateway matches them (tests/template checks they
# agree); ANY takes every method. Anything else never reaches a function there: the gateway answers itself.
ROUTES = frozenset(
    {
        ("POST", "/batches"),
        ("GET", "/batches/{id}"),
        ("DELETE", "/batches/{id}"),
        ("GET", "/batches/{id}/jobs"),
        ("ANY", "/batches"),  # every other method, for the function's 405
        ("ANY", "/batches/{id}"),
        ("ANY", "/batches/{id}/jobs"),
        ("GET", "/operator/batches/{id}"),
        ("POST", "/videos"),
        ("GET", "/videos"),
        ("GET", "/videos/{id}"),
        ("DELETE", "/videos/{id}"),
        ("ANY", "/videos"),  # every other method, for the function's 405
        ("ANY", "/videos/{id}"),
        ("GET", "/models"),
        ("GET", "/health"),
        ("POST", "/api/v1/videos"),
        ("GET", "/api/v1/videos/models"),
        ("GET", "/api/v1/videos/{id}"),
        ("GET", "/api/v1/videos/{id}/content"),
        ("GET", "/webhooks/secret"),
        ("POST", "/webhooks/secret/rotate"),
        ("GET", "/api/v1/webhooks/secret"),
        ("POST", "/api/v1/webhooks/secret/rotate"),
        ("GET", "/operator/videos/{id}"),
        ("GET", "/openapi.json"),
        ("POST", CALLBACK_PATH),
    }
)
# The template's MISSING_AUTHENTICATION_TOKEN GatewayResponse (API Gateway's answer to a path or method it
# has no route for, by default a bare 403 "Missing Authentication Token"): a 404 in a shape both APIs'
# clients read, OpenRouter's envelope with the IAM API's error.message (tests/template checks they agree).
NOT_FOUND_BODY = {"error": {"code": 404, "message": "Resource not found", "metadata": None}}


def resource_for(path: str) -> tuple[str, dict[str, str] | None]:
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "videos":
        return "/videos/{id}", {"id": parts[1]}
    if parts[:1] == ["batches"] and len(parts) == 2:
        return "/batches/{id}", {"id": parts[1]}
    if parts[:1] == ["batches"] and len(parts) == 3 and parts[2] == "jobs":
        return "/batches/{id}/jobs", {"id": parts[1]}
    if len(parts) == 3 and parts[:2] == ["operator", "videos"]:
        return "/operator/videos/{id}", {"id": parts[2]}
    if len(parts) == 3 and parts[:2] == ["operator", "batches"]:
        return "/operator/batches/{id}", {"id": parts[2]}
    if parts[:3] == ["api", "v1", "videos"] and len(parts) in (4, 5) and parts[3] != "models":
        if len(parts) == 4:
            return "/api/v1/videos/{id}", {"id": parts[3]}
        if parts[4] == "content":
            return "/api/v1/videos/{id}/content", {"id": parts[3]}
    return "/" + "/".join(parts), None


def is_routed(method: str, path: str) -> bool:
    """Whether the template declares a route for this request (``path`` without the stage)."""
    resource, _ = resource_for(path)
    return (method, resource) in ROUTES or ("ANY", resource) in ROUTES


def is_compatible(path: str) -> bool:
    """The OpenRouter-compatible routes: the key authorizer's, not IAM's."""
    return path.startswith("/api/v1/")


class BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def proxy_event(
    method: str,
    raw_path: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    body: bytes,
    client_ip: str,
    signer: str | None = None,
    authorizer: dict[str, Any] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    """``headers``: a mapping, or the (name, value) pairs as received. As in API Gateway, names keep
    their case, a repeated header is a list in multiValueHeaders and its last value in headers.
    ``signer``: the ARN of the request's SigV4 signer, if it was signed. ``authorizer``: the key
    authorizer's context, for the routes behind it (which then have no IAM caller). ``public``: a route without
    authorization (no caller at all); a body that is not UTF-8 is then passed base64-encoded, as API Gateway
    passes bytes it will not turn into text, so that the function sees exactly the bytes sent."""
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers)
    if not any(name.lower() == "x-forwarded-proto" for name, _ in pairs):
        pairs.append(("X-Forwarded-Proto", "http"))  # API Gateway adds it (https); locally it is plain HTTP
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    lowered = {name.lower(): value for name, value in pairs}
    url = urlsplit(raw_path)
    path = url.path
    if path == f"/{STAGE}" or path.startswith(f"/{STAGE}/"):
        path = path[len(STAGE) + 1 :] or "/"
    resource, path_parameters = resource_for(path)
    query = parse_qs(url.query, keep_blank_values=True)
    caller = None if authorizer is not None or public else signer or lowered.get("x-videogen-caller") or DEFAULT_CALLER
    text = body.decode("utf-8", errors="replace") if body else None
    encoded = False
    if public and body:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single,
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "stage": STAGE,
            "path": f"/{STAGE}{path}",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
            "identity": {
                "userArn": caller,
                "caller": caller,
                "sourceIp": client_ip,
                "userAgent": lowered.get("user-agent"),
            },
            **({"authorizer": authorizer} if authorizer is not None else {}),
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class FrontDoor:
    def __init__(
        self,
        lambda_client: Any,
        function_name: str,
        port: int = 0,
        api_name: str | None = None,
        identities: SigV4Identities | None = None,
        authorizer: LocalAuthorizer | None = None,
        faults: AwsFaults | None = None,
        public_routes: Mapping[str, str] | None = None,
        throttle: TokenBucket | None = None,
    ) -> None:
        """``api_name``: the API's name in the template, the dimension of its local AWS/ApiGateway metrics.
        ``identities``: who signed a signed request (without it, only X-Videogen-Caller names the caller).
        ``authorizer``: the key authorizer of the compatible routes. ``faults``: drops a share of the
        answers after the function ran. ``public_routes``: path → function, reached without IAM or a key.
        ``throttle``: the stage's token bucket (None: no throttling)."""
        door = self
        self.identities = identities
        self.authorizer = authorizer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                started = time.perf_counter()
                try:
                    body = self._read_body()
                except BadBody as refused:
                    # Answered before the function is invoked, like API Gateway's own limits. The unread
                    # rest of the body would be taken for the next request: close the connection.
                    error = {"error": {"code": refused.status, "message": str(refused)}}
                    door.record(refused.status, started)
                    self._reply(refused.status, {"Content-Type": "application/json"}, json.dumps(error))
                    self.close_connection = True
                    return
                if door.throttle is not None and not door.throttle.take():
                    # As API Gateway: throttled before the signature, the authorizer or the function; the
                    # body was read all the same, so the connection stays usable.
                    door.record(429, started)
                    self._reply(429, {"Content-Type": "application/json"}, json.dumps(THROTTLED_BODY))
                    return
                path = urlsplit(self.path).path.removeprefix(f"/{STAGE}")
                if not is_routed(self.command, path):
                    # No route, no authorization: API Gateway answers before the signature or a key is looked at.
                    door.record(404, started)
                    self._reply(404, {"Content-Type": "application/json"}, json.dumps(NOT_FOUND_BODY))
                    return
                try:
                    signer = door.identities.principal(dict(self.headers.items())) if door.identities else None
                except InvalidSignature:
                    door.record(403, started)
                    message = {"message": "The security token included in the request is invalid."}
                    self._reply(403, {"Content-Type": "application/json"}, json.dumps(message))
                    return
                authorized: dict[str, Any] | None = None
                public_function = door.public_routes.get(path)
                if public_function is not None:
                    event = proxy_event(
                        self.command, self.path, self.headers.items(), body, self.client_address[0], public=True
                    )
                    status, response_headers, text = door.invoke(event, public_function)
                    door.record(status, started)
                    self._reply(status, response_headers, text)
                    return
                if door.authorizer is not None and is_compatible(path):
                    query = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
                    decision = door.authorizer.decide(self.command, path, dict(self.headers.items()), query)
                    if decision.status != 200:
                        door.record(decision.status, started)
                        self._reply(decision.status, {"Content-Type": "application/json"}, json.dumps(decision.body))
                        return
                    authorized = decision.authorizer_context
                event = proxy_event(
                    self.command,
                    self.path,
                    self.headers.items(),
                    body,
                    self.client_address[0],
                    signer=None if authorized is not None else signer,
                    authorizer=authorized,
                )
                status, response_headers, text = door.invoke(event)
                door.record(status, started)
                if door.faults is not None and door.faults.drop_response():
                    # The function ran (its job, if any, exists); the caller gets no answer at all.
                    self.close_connection = True
                    return
                self._reply(status, response_headers, text)

            def _read_body(self) -> bytes:
                if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
                    return self._read_chunked()
                try:
                    length = int(self.headers.get("content-length") or 0)
                except ValueError:
                    raise BadBody(400, "invalid Content-Length") from None
                if length < 0:
                    raise BadBody(400, "invalid Content-Length")
                if length > MAX_BODY_BYTES:
                    raise BadBody(413, "request body too large")
                return self.rfile.read(length) if length else b""

            def _read_chunked(self) -> bytes:
                """Transfer-Encoding: chunked (curl -T -, streamed httpx bodies), within the same limit."""
                body = bytearray()
                while True:
                    try:
                        size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                    except ValueError:
                        raise BadBody(400, "malformed chunked body") from None
                    if size == 0:
                        while self.rfile.readline(1024).strip():  # trailers, up to the empty line
                            pass
                        return bytes(body)
                    if size < 0 or len(body) + size > MAX_BODY_BYTES:
                        raise BadBody(413, "request body too large")
                    body += self.rfile.read(size)
                    self.rfile.readline(8)  # the CRLF closing the chunk

            def _reply(self, status: int, headers: dict[str, str], text: str) -> None:
                payload = b"" if self.command == "HEAD" else text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(text.encode()) if self.command == "HEAD" else len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            # Every method (TRACE, QUERY, ...) is served, where http.server would answer 501: the routes of
            # ANY take it to the function (which answers 405), the others get the gateway's 404.
            def __getattr__(self, name: str) -> Any:
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self._lambda = lambda_client
        self.faults = faults
        self.throttle = throttle
        self.public_routes = dict(public_routes or {})
        self._function = function_name
        self._api_name = api_name
        self._server = _Listener(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/{STAGE}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="front-door", daemon=True
        )

    def invoke(self, event: dict[str, Any], function: str | None = None) -> tuple[int, dict[str, str], str]:
        response = self._lambda.invoke(FunctionName=function or self._function, Payload=json.dumps(event).encode())
        payload = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            # What API Gateway answers when the integration fails.
            return 502, {"Content-Type": "application/json"}, json.dumps({"message": "Internal server error"})
        headers = {k: str(v) for k, v in (payload.get("headers") or {}).items()}
        for name, values in (payload.get("multiValueHeaders") or {}).items():
            headers.setdefault(name, ", ".join(str(v) for v in values))
        body = payload.get("body") or ""
        if payload.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", errors="replace")
        return int(payload.get("statusCode", 502)), headers, body

    def record(self, status: int, started: float) -> None:
        """API Gateway's Latency: from the request received to the answer ready (what the integration took)."""
        if self._api_name:
            metrics.record_api(self._api_name, STAGE, status, (time.perf_counter() - started) * 1000)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
