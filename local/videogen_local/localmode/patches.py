"""The moto 5.2.5 internals local mode relies on (see ../shared/notes/offline-aws.md).

Each patch is small, says why it exists, and has a smoke test in tests/local so that a moto upgrade
that breaks one fails loudly instead of silently dropping invocations.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]

# function name -> handler; filled by the local stack, read by the patched invoke.
HANDLERS: dict[str, Handler] = {}
_applied = False
_lock = threading.Lock()


@dataclass
class LocalContext:
    """What Powertools reads from a Lambda context."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replaces moto's Docker-based LambdaFunction._invoke_lambda: run the real handler in-process.

    Every moto path into Lambda ends here (Invoke API, Step Functions tasks, S3 notifications,
    EventBridge targets via the patch below), so each runs the project's own handler."""
    handler = HANDLERS.get(self.function_name)
    if handler is None:
        error = {"errorMessage": f"no local handler for {self.function_name}", "errorType": "LocalHandlerMissing"}
        return json.dumps(error), True, ""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    context = LocalContext(
        function_name=self.function_name,
        invoked_function_arn=self.function_arn,
        log_group_name=f"/aws/lambda/{self.function_name}",
    )
    try:
        return json.dumps(handler(event, context), default=str), False, ""
    except Exception as exc:
        # Step Functions matches Retry/Catch on errorType, exactly as with a deployed function.
        error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        logging.getLogger("videogen.local").debug("handler %s failed", self.function_name, exc_info=True)
        return json.dumps(error), True, traceback.format_exc()


def _send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    """moto's EventBridge rules cannot deliver to Lambda targets (NotImplementedError): deliver
    those through moto's own invoke helper, and leave the other targets to moto."""
    from moto.events import notifications

    def send_to_targets(self: Any, event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(event):
            return
        others = []
        for target in self.targets:
            if ":lambda:" in target["Arn"]:
                notifications._invoke_lambda(self.account_id, fn_arn=target["Arn"], event=event)
            else:
                others.append(target)
        saved, self.targets = self.targets, others
        try:
            original(self, event, transform_input)
        finally:
            self.targets = saved

    return send_to_targets


def apply() -> None:
    """Apply the patches once per process (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        from moto.awslambda.models import LambdaFunction
        from moto.events.models import Rule

        LambdaFunction._invoke_lambda = _invoke_lambda
        Rule.send_to_targets = _send_to_targets(Rule.send_to_targets)
        # The ASL interpreter logs every caught error at ERROR level; our Catch paths are expected.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        _applied = True
