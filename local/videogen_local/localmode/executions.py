"""Step Functions execution status-change events, which moto does not emit.

On AWS, Step Functions puts "Step Functions Execution Status Change" events on the default event bus;
the template's safety-net rule sends those with status FAILED, TIMED_OUT or ABORTED to the fail
function. Here a watcher polls the state machine's executions and puts the same events on the default
bus, where the local copy of that rule (same pattern) routes them. Only the ending statuses the rule
matches are emitted; RUNNING/SUCCEEDED are not, since nothing local listens for them.

While local serve records metrics, the watcher also writes the AWS/States execution metrics the
dashboard charts (started, and succeeded / failed / timed out / aborted), once per execution.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from videogen_local.localmode import metrics
from videogen_local.localmode.loop import BackgroundLoop

DETAIL_TYPE = "Step Functions Execution Status Change"
ENDED = ("FAILED", "TIMED_OUT", "ABORTED")


def _millis(value: Any) -> int | None:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else None


def _seconds(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def status_change_entry(execution: dict[str, Any]) -> dict[str, Any]:
    """A put_events entry shaped like the event AWS sends (see events/eventbridge_execution_failed.json)."""
    detail = {
        "executionArn": execution["executionArn"],
        "stateMachineArn": execution["stateMachineArn"],
        "name": execution["name"],
        "status": execution["status"],
        "startDate": _millis(execution.get("startDate")),
        "stopDate": _millis(execution.get("stopDate")),
        "input": execution.get("input"),
        "output": execution.get("output"),
        "error": execution.get("error"),
        "cause": execution.get("cause"),
    }
    return {
        "Source": "aws.states",
        "DetailType": DETAIL_TYPE,
        "Resources": [execution["executionArn"]],
        "Detail": json.dumps(detail),
    }


class ExecutionWatcher(BackgroundLoop):
    name = "execution-watcher"

    def __init__(self, sfn: Any, events: Any, state_machine_arn: str, interval: float = 0.5) -> None:
        super().__init__(pause=interval)
        self._sfn = sfn
        self._events = events
        self._arn = state_machine_arn
        self._seen: set[str] = set()
        self._counted_start: set[str] = set()
        self._counted_end: set[str] = set()

    def tick(self) -> None:
        self.poll_once()
        if metrics.recording():
            self.record_metrics()

    def record_metrics(self) -> int:
        """Record ExecutionsStarted and the ending metric of every execution not counted yet, at the
        execution's own start / stop time; returns how many lines were written."""
        written = 0
        request: dict[str, Any] = {"stateMachineArn": self._arn}
        while True:
            page = self._sfn.list_executions(**request)
            for item in page["executions"]:
                arn, status = item["executionArn"], item["status"]
                if arn not in self._counted_start:
                    self._counted_start.add(arn)
                    metrics.record_execution(self._arn, "ExecutionsStarted", _seconds(item.get("startDate")))
                    written += 1
                if status in metrics.EXECUTION_METRICS and arn not in self._counted_end:
                    self._counted_end.add(arn)
                    ended = metrics.EXECUTION_METRICS[status]
                    metrics.record_execution(self._arn, ended, _seconds(item.get("stopDate")))
                    written += 1
            if not page.get("nextToken"):
                return written
            request["nextToken"] = page["nextToken"]

    def poll_once(self) -> int:
        """Emit one event per execution newly found in an ending status; returns how many."""
        emitted = 0
        for status in ENDED:
            for item in self._sfn.list_executions(stateMachineArn=self._arn, statusFilter=status)["executions"]:
                arn = item["executionArn"]
                if arn in self._seen:
                    continue
                execution = self._sfn.describe_execution(executionArn=arn)
                self._events.put_events(Entries=[status_change_entry(execution)])
                self._seen.add(arn)
                emitted += 1
        return emitted
