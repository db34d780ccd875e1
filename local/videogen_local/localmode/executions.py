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
from collections.abc import Iterator
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
    """Each tick costs a page or two, however many executions the run has made: it reads the newest
    executions until a page holds none it has seen before (ListExecutions is newest first), the running
    ones, and each execution once more when it leaves RUNNING. (Reading every execution on every tick made
    a 2,000-job run spend a third of a core on ListExecutions by its end.)"""

    name = "execution-watcher"

    def __init__(self, sfn: Any, events: Any, state_machine_arn: str, interval: float = 0.5) -> None:
        super().__init__(pause=interval)
        self._sfn = sfn
        self._events = events
        self._arn = state_machine_arn
        self._known: set[str] = set()  # every execution seen
        self._running: set[str] = set()  # seen running; its end not handled yet

    def tick(self) -> None:
        self.poll_once()

    def poll_once(self) -> int:
        """Handle every execution that started or ended since the last call: its AWS/States metrics (while
        metrics are recorded) and, for an ending the safety-net rule matches, its status-change event.
        Returns how many starts and ends were handled."""
        handled = 0
        for item in self._new_executions():
            arn = item["executionArn"]
            self._known.add(arn)
            self._started(item)
            handled += 1
            # Ended already: handled like one seen leaving RUNNING (below), so an event that could not be put
            # (PutEvents failing) is put on a later tick.
            self._running.add(arn)
            if item["status"] != "RUNNING":
                self._ended(item)
                self._running.discard(arn)
                handled += 1
        if self._running:
            still = {item["executionArn"] for item in self._listed(statusFilter="RUNNING")}
            for arn in sorted(self._running - still):
                execution = self._sfn.describe_execution(executionArn=arn)
                if execution["status"] == "RUNNING":
                    continue
                self._ended(execution)
                self._running.discard(arn)
                handled += 1
        return handled

    def _new_executions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in self._pages():
            new = [item for item in page if item["executionArn"] not in self._known]
            found.extend(new)
            if not new:  # newest first: past a page of known ones, every execution is known
                break
        return found

    def _listed(self, **filters: str) -> list[dict[str, Any]]:
        return [item for page in self._pages(**filters) for item in page]

    def _pages(self, **filters: str) -> Iterator[list[dict[str, Any]]]:
        request: dict[str, Any] = {"stateMachineArn": self._arn, **filters}
        while True:
            page = self._sfn.list_executions(**request)
            yield page["executions"]
            if not page.get("nextToken"):
                return
            request["nextToken"] = page["nextToken"]

    def _started(self, item: dict[str, Any]) -> None:
        if metrics.recording():
            metrics.record_execution(self._arn, "ExecutionsStarted", _seconds(item.get("startDate")))

    def _ended(self, item: dict[str, Any]) -> None:
        status = item["status"]
        if status in ENDED:
            # The event carries the execution's input, output, error and cause, which a listing leaves out.
            execution = item if "input" in item else self._sfn.describe_execution(executionArn=item["executionArn"])
            self._events.put_events(Entries=[status_change_entry(execution)])
        if metrics.recording() and status in metrics.EXECUTION_METRICS:
            metrics.record_execution(self._arn, metrics.EXECUTION_METRICS[status], _seconds(item.get("stopDate")))
