"""The local stack's own AWS calls reach moto in this process, not through its HTTP server.

`videogen local serve` runs moto's server for callers outside the process (the CLI, the tests, a browser), and
runs every handler, poller and the Step Functions interpreter inside that same process. Their calls used to
travel over loopback too: botocore's urllib3 send, then ThreadedMotoServer's new connection and thread per
request, werkzeug's parsing and Flask's routing, only to reach the moto response method that a call made in
the process can reach directly. Measured on this project's 2-core machine (a DynamoDB UpdateItem and GetItem
pair, repeated): 8.1 ms of CPU per call over loopback, 2.6 to 3.5 ms in the process; the AWS calls are most of
a local job's time.

A botocore ``before-send`` handler (the hook moto's own in-process mock uses) answers a request addressed to
the local endpoint by calling the response method the server routes it to, with the same request: moto turns
a werkzeug request and a botocore one into one ``Request`` and hands the method the URL as it was sent
(``moto.core.utils.convert_to_flask_response`` and ``moto.core.botocore_stubber`` do the same), so queue URLs,
S3 paths and regions read exactly as they do over HTTP. Errors are answered as the server answers them: moto's
HTTP errors with their status and body, a ``ClientError`` with a 400, anything else with a 500, which botocore
retries as it would a server's. The request is still signed and serialized by botocore and the answer parsed
by it: the clients see real AWS wire formats both ways.

The handler is in botocore's built-in handlers, so every session created afterwards has it (each
``videogen.aws.client`` has its own session; so do the stack's clients and the interpreter's). It runs after
the ``register_first`` hooks of chaos runs (aws_faults.py), whose injected throttles still answer first, and
it answers only while a stack has said which endpoint is its own (``serve``): a request to any other address
goes out over the network as before.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("videogen.local")

# botocore's service id (as in the before-send event's name) -> (moto's backend, the AWS host its URL patterns
# name, {region} filled in). A service not listed here goes over HTTP.
SERVICES: dict[str, tuple[str, str]] = {
    "dynamodb": ("dynamodb", "dynamodb.{region}.amazonaws.com"),
    "dynamodb-streams": ("dynamodbstreams", "streams.dynamodb.{region}.amazonaws.com"),
    "s3": ("s3", "s3.amazonaws.com"),
    "sqs": ("sqs", "sqs.{region}.amazonaws.com"),
    "lambda": ("awslambda", "lambda.{region}.amazonaws.com"),
    "sfn": ("stepfunctions", "states.{region}.amazonaws.com"),
    "eventbridge": ("events", "events.{region}.amazonaws.com"),
    "secrets-manager": ("secretsmanager", "secretsmanager.{region}.amazonaws.com"),
    "iam": ("iam", "iam.amazonaws.com"),
    "sts": ("sts", "sts.amazonaws.com"),
}
_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/")
_DEFAULT_REGION = "us-east-1"

# The network locations ("127.0.0.1:<port>", "localhost:<port>") of the running stack's moto server.
_local: frozenset[str] = frozenset()
_routes: dict[str, list[tuple[re.Pattern[str], Callable[..., Any]]]] = {}
_routes_lock = threading.Lock()
_registered = False


def register() -> None:
    """Put the handler in botocore's built-in handlers (once): sessions created from now on carry it."""
    global _registered
    from botocore.handlers import BUILTIN_HANDLERS

    with _routes_lock:
        if not _registered:
            BUILTIN_HANDLERS.append(("before-send", answer_in_process))
            _registered = True


def serve(port: int) -> None:
    """A local stack's moto server listens on ``port``: requests to it are answered in this process (until
    ``stop``). Call before creating the clients that are to use it."""
    global _local
    register()
    _local = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})


def stop() -> None:
    global _local
    _local = frozenset()


def answer_in_process(event_name: str, request: Any, **_: Any) -> Any:
    """botocore's before-send: the AWSResponse for a request to the local endpoint, or None (sent as usual)."""
    if not _local:
        return None
    parts = urlsplit(request.url)
    if parts.netloc not in _local:
        return None
    service = event_name.split(".")[1] if event_name.count(".") >= 1 else ""
    known = SERVICES.get(service)
    if known is None:
        return None
    backend, host = known
    scope = _SCOPE.search(str(request.headers.get("Authorization", "")))
    region = scope.group(1) if scope else _DEFAULT_REGION
    # Matched as moto's mock matches it (its patterns name AWS hosts); called with the URL as sent.
    canonical = f"https://{host.format(region=region)}{parts.path}"
    method = next((method for pattern, method in _routes_of(backend) if pattern.match(canonical)), None)
    if method is None:
        return None
    status, headers, body = _call(method, request)
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    return AWSResponse(request.url, status, headers, MockRawResponse(body))  # type: ignore[arg-type]


def _routes_of(backend: str) -> list[tuple[re.Pattern[str], Callable[..., Any]]]:
    routes = _routes.get(backend)
    if routes is None:
        import moto.backends as backends
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.core.base_backend import BackendDict

        found = backends.get_backend(backend)  # type: ignore[call-overload]
        if isinstance(found, BackendDict):
            regions = found[DEFAULT_ACCOUNT_ID]
            instance = regions[_DEFAULT_REGION] if _DEFAULT_REGION in regions else regions["aws"]
        else:
            instance = found["global"]
        # The methods are the response classes' dispatchers: each call builds its own response object, and
        # reads its account and region from the request, so one table serves every account and region.
        routes = [(re.compile(url), method) for url, method in instance.urls.items()]
        with _routes_lock:
            _routes.setdefault(backend, routes)
    return routes


def _call(method: Callable[..., Any], request: Any) -> tuple[int, dict[str, Any], bytes | str]:
    from botocore.exceptions import ClientError
    from moto.core.exceptions import HTTPException
    from moto.core.request import normalize_request

    if isinstance(request.body, bytearray | memoryview):
        # werkzeug builds a request from bytes, text or a file, not a buffer (storage.py sends parts as bytearrays).
        request.body = bytes(request.body)
    try:
        normalized = normalize_request(request)
        result = method(normalized, normalized.raw_url, normalized.headers)
    except HTTPException as exc:
        return exc.code or 500, dict(exc.get_headers()), exc.get_body()
    except ClientError as exc:  # as moto's Flask wrapper answers it
        return 400, {}, str(exc.response["Error"].get("Message", ""))
    except Exception:  # as the server answers an unhandled error; botocore retries a 500
        log.exception("moto failed on %s %s", request.method, request.url)
        return 500, {"Content-Type": "text/html"}, b"<h1>Internal Server Error</h1>"
    if len(result) == 3:
        status, headers, body = result
        return int(status), dict(headers), body
    return 200, {}, result
