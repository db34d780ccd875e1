"""Step Functions execution status-change events, which moto does not emit.

On AWS, Step Functions puts "Step Functions Execution Status Change" events on the default event bus;
the template's safety-net rule sends those with status FAILED, TIMED_OUT or ABORTED to the fail
function. Here moto's interpreter tells a watcher when each execution starts and ends (``hook_moto``), and the
watcher puts the same events on the default bus, where the local copy of that rule (same pattern) routes them.
Only the ending statuses the rule matches are emitted; RUNNING/SUCCEEDED are not, since nothing local listens
for them.

While local serve records metrics, the watcher also writes the AWS/States execution metrics the
dashboard charts (started, and succeeded / failed / timed out / aborted), once per execution.
"""

from __future__ import annotations

import json
import logging
import queue
from collections.abc import Callable
from datetime import datetime
from typing import Any

from videogen_local.localmode import metrics
from videogen_local.localmode.loop import BackgroundLoop

log = logging.getLogger("videogen.local")
DETAIL_TYPE = "Step Functions Execution Status Change"
ENDED = ("FAILED", "TIMED_OUT", "ABORTED")
STARTED, STOPPED = "started", "ended"

# Set by a running local stack: told (STARTED or STOPPED, execution ARN, state machine ARN, when) by moto's
# Step Functions, on the thread that started the execution or ran it to its end.
Listener = Callable[[str, str, str, datetime | None], None]
LISTENER: Listener | None = None


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
    """Handles what moto's interpreter reported (``notify``) since its last tick: costs nothing while no
    execution starts or ends, and one DescribeExecution per execution that ended. (It used to list the
    executions each tick: at a few hundred running at once, listing the running ones cost a tenth of local
    serve's time.)"""

    name = "execution-watcher"

    def __init__(self, sfn: Any, events: Any, state_machine_arn: str, interval: float = 0.5) -> None:
        super().__init__(pause=interval)
        self._sfn = sfn
        self._events = events
        self._arn = state_machine_arn
        self._reported: queue.SimpleQueue[tuple[str, str, datetime | None]] = queue.SimpleQueue()
        self._ending: list[str] = []  # ended; its event not put yet (PutEvents failed: tried again next tick)

    def notify(self, change: str, execution_arn: str, state_machine_arn: str, when: datetime | None) -> None:
        """moto's report (a Listener): an execution of this watcher's state machine started or ended."""
        if state_machine_arn == self._arn:
            self._reported.put((change, execution_arn, when))

    def tick(self) -> None:
        self.poll_once()

    def poll_once(self) -> int:
        """Handle every execution that started or ended since the last call: its AWS/States metrics (while
        metrics are recorded) and, for an ending the safety-net rule matches, its status-change event.
        Returns how many starts and ends were handled."""
        handled = 0
        while True:
            try:
                change, arn, when = self._reported.get_nowait()
            except queue.Empty:
                break
            if change == STARTED:
                if metrics.recording():
                    metrics.record_execution(self._arn, "ExecutionsStarted", _seconds(when))
                handled += 1
            else:
                self._ending.append(arn)
        while self._ending:
            self._ended(self._sfn.describe_execution(executionArn=self._ending[0]))
            self._ending.pop(0)
            handled += 1
        return handled

    def _ended(self, execution: dict[str, Any]) -> None:
        status = execution["status"]
        if status in ENDED:
            # The event carries the execution's input, output, error and cause.
            self._events.put_events(Entries=[status_change_entry(execution)])
        if metrics.recording() and status in metrics.EXECUTION_METRICS:
            metrics.record_execution(self._arn, metrics.EXECUTION_METRICS[status], _seconds(execution.get("stopDate")))


def _tell(change: str, execution: Any, when: datetime | None) -> None:
    listener = LISTENER
    if listener is None:
        return
    try:
        listener(change, str(execution.exec_arn), str(execution.state_machine_arn), when)
    except Exception:  # moto's thread must go on whatever the watcher does
        log.exception("the execution watcher could not take a report of %s", getattr(execution, "exec_arn", "?"))


def hook_moto() -> None:
    """moto 5.2.5's interpreter (moto.stepfunctions.parser) starts every execution with ``Execution.start`` and
    ends every one, whatever its ending (success, failure, time-out, StopExecution), with its worker
    communication's ``terminated``, which records the final status: each is followed by a report to LISTENER.
    Idempotent."""
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    if getattr(Execution.start, "_videogen_reports", False):
        return
    start = Execution.start
    terminated = BaseExecutionWorkerCommunication.terminated

    def started(self: Any) -> None:
        start(self)
        _tell(STARTED, self, self.start_date)

    def ended(self: Any) -> None:
        terminated(self)
        _tell(STOPPED, self.execution, self.execution.stop_date)

    started._videogen_reports = True  # type: ignore[attr-defined]
    Execution.start = started  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = ended  # type: ignore[method-assign]
