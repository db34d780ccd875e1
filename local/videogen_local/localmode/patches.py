"""The moto 5.2.5 internals local mode relies on (see ../shared/notes/offline-aws.md).

Each patch is small, says why it exists, and has a smoke check below (``check_*``, run by
tests/local/test_patches.py) so that a moto upgrade that breaks one fails loudly instead of silently
dropping invocations. moto is pinned (==5.2.5) in local/pyproject.toml for the same reason.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from videogen_local.localmode import executions, metrics, moto_caches, output
from videogen_local.localmode.aws_faults import AwsFaults, FunctionCrash

Handler = Callable[[dict[str, Any], Any], Any]
# (function ARN, event) -> None: how S3 notifications and EventBridge targets invoke a function.
AsyncInvoke = Callable[[str, dict[str, Any]], None]

log = logging.getLogger("videogen.local")

# function name -> handler; filled by the local stack, read by the patched invoke.
HANDLERS: dict[str, Handler] = {}
# Set by a running local stack: Lambda's asynchronous invocation (retries, on-failure destination).
# None: moto's own behaviour (one attempt, errors dropped).
ASYNC_INVOKER: AsyncInvoke | None = None
# Set by a running local stack with AWS faults on (chaos runs): invocations may die half-way.
AWS_FAULTS: AwsFaults | None = None
# Lambda gives an execution environment one event at a time; here every function has one environment,
# which concurrent invocations (the front door's threads) share. A function that keeps the current event
# in module state must take its events one at a time (function name -> its lock; filled by the stack):
# the api's Powertools resolver keeps it on its class (BaseRouter.current_event), so two concurrent
# requests could both be served with one's body and caller; submit's BatchProcessor keeps its batch.
ONE_AT_A_TIME: dict[str, threading.Lock] = {}


class Environments:
    """Several execution environments of one function (each its own copy of the function's module, each one
    event at a time), as Lambda scales an SQS event source up to its MaximumConcurrency. An invocation takes a
    free one or waits for one; ``peak`` is the most that were busy at once."""

    def __init__(self, handlers: list[Handler]) -> None:
        self._free: queue.SimpleQueue[Handler] = queue.SimpleQueue()
        for handler in handlers:
            self._free.put(handler)
        self.size = len(handlers)
        self.busy = 0
        self.peak = 0
        self._count = threading.Lock()

    def wrap(self, wrapper: Callable[[Handler], Handler]) -> None:
        """Wrap every environment's handler (measurements); call while none is busy."""
        handlers = [self._free.get() for _ in range(self.size)]
        for handler in handlers:
            self._free.put(wrapper(handler))

    @contextmanager
    def take(self) -> Iterator[Handler]:
        handler = self._free.get()
        with self._count:
            self.busy += 1
            self.peak = max(self.peak, self.busy)
        try:
            yield handler
        finally:
            with self._count:
                self.busy -= 1
            self._free.put(handler)


# function name -> its environments, for a function given more than one (filled by the stack).
ENVIRONMENTS: dict[str, Environments] = {}
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
    # The function's Timeout: the remaining time counts down from the invocation's start, as on Lambda
    # (a batch's intake stops and continues itself when it runs low).
    timeout_seconds: float = 60.0
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_seconds - time.monotonic()) * 1000))


def _invoke_lambda(self: Any, event: Any = None) -> tuple[str, bool, str]:
    """Replaces moto's Docker-based LambdaFunction._invoke_lambda: run the real handler in-process.

    Every moto path into Lambda ends here (Invoke API, Step Functions tasks, S3 notifications,
    EventBridge targets via the patches below), so each runs the project's own handler."""
    handler = HANDLERS.get(self.function_name)
    if handler is None:
        error = {"errorMessage": f"no local handler for {self.function_name}", "errorType": "LocalHandlerMissing"}
        return json.dumps(error), True, ""
    if isinstance(event, str | bytes):
        event = json.loads(event or "{}")
    context = LocalContext(
        function_name=self.function_name,
        invoked_function_arn=self.function_arn,
        memory_limit_in_mb=int(getattr(self, "memory_size", None) or 256),
        log_group_name=f"/aws/lambda/{self.function_name}",
        timeout_seconds=float(getattr(self, "timeout", None) or 60),
    )
    faults = AWS_FAULTS
    around: AbstractContextManager[None] = (
        faults.invocation(self.function_name, float(getattr(self, "timeout", None) or 60))
        if faults is not None
        else nullcontext()
    )
    environments = ENVIRONMENTS.get(self.function_name)
    serial: AbstractContextManager[Any] = (
        environments.take() if environments is not None else ONE_AT_A_TIME.get(self.function_name) or nullcontext()
    )
    started = time.perf_counter()
    try:
        with serial as environment:
            if environments is not None:
                handler = environment  # this environment's copy of the function
            started = time.perf_counter()  # the function's duration, not its wait for the environment
            # Each log line under its function's log group. The handler runs on its caller's thread (in_process.py):
            # whatever that thread was running before comes back after.
            outer = getattr(output.CURRENT_FUNCTION, "name", None)
            output.CURRENT_FUNCTION.name = self.function_name
            try:
                with around:
                    answer = json.dumps(handler(event, context), default=str)
            finally:
                output.CURRENT_FUNCTION.name = outer
    except FunctionCrash as death:
        # The injected death of the function's process (aws_faults.py): what Lambda reports for it.
        metrics.record_lambda(self.function_name, (time.perf_counter() - started) * 1000, error=True)
        return json.dumps(death.payload()), True, ""
    except Exception as exc:
        metrics.record_lambda(self.function_name, (time.perf_counter() - started) * 1000, error=True)
        # Step Functions matches Retry/Catch on errorType, exactly as with a deployed function.
        error = {"errorMessage": str(exc), "errorType": type(exc).__name__}
        log.debug("handler %s failed", self.function_name, exc_info=True)
        return json.dumps(error), True, traceback.format_exc()
    # What Lambda itself publishes per invocation (written only while local serve records metrics).
    metrics.record_lambda(self.function_name, (time.perf_counter() - started) * 1000, error=False)
    return answer, False, ""


def _moto_async_invoke(account_id: str, fn_arn: str, event: dict[str, Any]) -> None:
    """moto's own asynchronous invoke: one attempt, errors dropped (used when no stack is running)."""
    from moto.awslambda.utils import get_backend

    try:
        get_backend(account_id, fn_arn.split(":")[3]).invoke(fn_arn, None, json.dumps(event), {}, {})
    except Exception:
        log.warning("asynchronous invocation of %s failed", fn_arn, exc_info=True)


def invoke_async(account_id: str, fn_arn: str, event: dict[str, Any]) -> None:
    """The one door for S3 and EventBridge → Lambda: on AWS both invoke asynchronously, so Lambda
    retries a failed event twice and then hands it to the function's on-failure destination.
    The running stack's invoker does that; without one, moto's single attempt."""
    invoker = ASYNC_INVOKER
    if invoker is None:
        _moto_async_invoke(account_id, fn_arn, event)
    else:
        invoker(fn_arn, event)


def _send_to_targets(original: Callable[..., None]) -> Callable[..., None]:
    """moto's EventBridge rules cannot deliver to Lambda targets (put_events raises
    NotImplementedError): deliver those as asynchronous invocations, leave the other targets
    (SQS, logs, archives, buses) to moto. Input/InputPath/InputTransformer are not applied to
    Lambda targets: the stack's rules use none."""

    def send_to_targets(self: Any, event: Any, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(event):
            return
        others = []
        for target in self.targets:
            if ":lambda:" in target["Arn"]:
                invoke_async(self.account_id, target["Arn"], event)
            else:
                others.append(target)
        saved, self.targets = self.targets, others
        try:
            original(self, event, transform_input)
        finally:
            self.targets = saved

    return send_to_targets


def _invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    """Replaces moto.s3.notifications._invoke_awslambda, which calls the function once and swallows
    every error: S3 notifications are asynchronous invocations too (retries, on-failure destination)."""
    invoke_async(account_id, fn_arn, event_body)


_SEQUENCER = itertools.count(1)
_SEQUENCER_LOCK = threading.Lock()


def _s3_event_with_sequencer(original: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """moto's S3 notification omits ``sequencer`` (and ``versionId``), which S3 puts in every object-created
    record: what orders the events of one key and, with the bucket, key and eTag (or the version id), tells a
    redelivered notification from a new write. Added here: a hexadecimal string that grows with each write,
    and the object's version id when the bucket is versioned."""

    def get_s3_event(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = original(event_name, bucket, key, notification_id)
        with _SEQUENCER_LOCK:
            sequencer = f"{int(time.time() * 1000):012X}{next(_SEQUENCER):08X}"
        for record in event.get("Records", []):
            obj = record["s3"]["object"]
            obj.setdefault("sequencer", sequencer)
            if getattr(key, "_is_versioned", False) and getattr(key, "_version_id", None):
                obj.setdefault("versionId", key.version_id)
        return event

    return get_s3_event


_DYNAMODB_WRITES = threading.RLock()
_serialized = False


def serialize_dynamodb_writes() -> None:
    """moto checks a write's condition and applies it without a lock, so two threads can both pass
    ``committed <= :room`` and both add: DynamoDB never lets that happen (each item's conditional writes
    are linearizable, a transaction is atomic). Running moto's writes one at a time restores that; the
    budgets' and the doors' concurrency tests depend on it. Idempotent."""
    global _serialized
    with _lock:
        if _serialized:
            return
        from moto.dynamodb.models import DynamoDBBackend

        DynamoDBBackend.transact_write_items = _rolled_back_by_item(DynamoDBBackend.transact_write_items)
        for name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item"):
            setattr(DynamoDBBackend, name, _one_at_a_time(getattr(DynamoDBBackend, name)))
        _serialized = True


class _TablesKept:
    """Stands in for the ``copy`` module in moto.dynamodb.models: moto backs up every table a transaction
    names with ``copy.deepcopy(table)`` before each transaction (its whole contents, each time: the cost
    grows with the table, so a run's transactions cost the square of its jobs). A table is handed back
    as it is, so moto's own rollback puts the same table back; ``_rolled_back_by_item`` keeps and restores
    what a transaction can change instead. Everything else is the real ``copy``."""

    def __init__(self) -> None:
        import copy

        self._copy = copy

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else self._copy.deepcopy(value, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._copy, name)


def _rolled_back_by_item(original: Callable[..., Any]) -> Callable[..., Any]:
    """A cancelled transaction leaves no trace, as on DynamoDB: the items it names (at most 100) are kept
    before it runs (deep copies: moto updates items in place) and put back if it raises, and the stream
    records it wrote are dropped (a cancelled transaction writes none). Runs under ``_DYNAMODB_WRITES``."""
    import copy

    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType

    models.copy = _TablesKept()  # type: ignore[assignment]

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]], *args: Any, **kwargs: Any) -> Any:
        kept: list[tuple[Any, Any, Any, Any]] = []  # (table, hash value, range value or None, item or None)
        streams: dict[int, tuple[Any, int]] = {}
        for entry in transact_items if isinstance(transact_items, list) else []:
            op = next(iter(entry.values()), None) if isinstance(entry, dict) else None
            if not isinstance(op, dict) or (table := self.tables.get(op.get("TableName"))) is None:
                continue
            key: Any = op.get("Item") if "Put" in entry else op.get("Key")
            try:
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, TypeError):
                continue  # moto refuses it before writing anything
            kept.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
            if table.stream_shard is not None:
                streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
        try:
            return original(self, transact_items, *args, **kwargs)
        except Exception:
            for table, hash_value, range_value, item in reversed(kept):
                if range_value is not None:
                    if item is None:
                        table.items.get(hash_value, {}).pop(range_value, None)
                    else:
                        table.items[hash_value][range_value] = item
                elif item is None:
                    table.items.pop(hash_value, None)
                else:
                    table.items[hash_value] = item
            for shard, length in streams.values():
                del shard.items[length:]
            raise

    return transact_write_items


def _one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    def serialized(*args: Any, **kwargs: Any) -> Any:
        with _DYNAMODB_WRITES:
            return method(*args, **kwargs)

    return serialized


def _step_functions_caches() -> None:
    """moto's Step Functions interpreter redoes two pure things at every step of every execution: it builds
    a JSONPath parser (ply's tables, read again) for each path it evaluates, and a boto3 client for each
    Lambda task it invokes. Both are cached here, keyed on everything they depend on: a parsed path is a
    value (``find`` keeps no state), and the client's settings are moto's constants (its fixed key, the
    region, the endpoint), and boto3 clients are safe to share between threads."""
    import functools

    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client, json_path

    json_path.parse = functools.lru_cache(maxsize=4096)(json_path.parse)  # type: ignore[attr-defined]
    result_path.parse = functools.lru_cache(maxsize=4096)(result_path.parse)  # type: ignore[attr-defined]
    build = boto_client.boto_client_for
    clients: dict[tuple[str, str, bool, str], Any] = {}

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port

        # state_credentials is not used by moto's builder (it signs with a fixed key) and so not by the key.
        key = (region, service, bool(botocore_stubber.enabled), str(moto_server_port()))
        client = clients.get(key)
        if client is None:
            client = clients.setdefault(key, build(region, service, state_credentials))
        return client

    boto_client.boto_client_for = boto_client_for
    lambda_eval_utils.boto_client_for = boto_client_for  # type: ignore[attr-defined]


def _has_concurrent_states(states: Any) -> bool:
    """Whether a definition's States (or a branch's, an iterator's) hold a Map or a Parallel: those keep
    per-run workers on their components, so a program holding one is never shared between executions."""
    for state in (states or {}).values() if isinstance(states, dict) else ():
        if not isinstance(state, dict) or state.get("Type") in ("Map", "Parallel"):
            return True
    return False


def _warm_heap_keys(component: Any, seen: set[int]) -> None:
    """Give every component of a parsed program its heap key now: moto draws it on first use, and two
    executions of one shared program drawing it at once could each keep a different one."""
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent

    if id(component) in seen:
        return
    seen.add(id(component))
    if isinstance(component, EvalComponent):
        _ = component.heap_key
    children = vars(component).values() if isinstance(component, Component) else component
    for child in children:
        if isinstance(child, Component):
            _warm_heap_keys(child, seen)
        elif isinstance(child, list | tuple | set | frozenset):
            _warm_heap_keys(list(child), seen)
        elif isinstance(child, dict):
            _warm_heap_keys(list(child.values()), seen)


def _shared_programs() -> None:
    """moto parses the state machine's definition (an ANTLR grammar, in Python) at the start of every
    execution: a tenth of a local job's time. The parsed program is shared between the executions of one
    definition instead: its components keep nothing of a run (each execution's state lives in its own
    Environment), save the heap keys, drawn here once, and Map and Parallel states, whose definitions are
    parsed per execution as before."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_entrypoint
    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def get_evaluation_entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        program = programs.get(definition) if isinstance(definition, str) else None
        if program is not None:
            return program
        try:
            shareable = isinstance(definition, str) and not _has_concurrent_states(json.loads(definition)["States"])
        except (ValueError, KeyError, TypeError):
            shareable = False
        if not shareable:
            return original(self)
        with lock:
            if definition not in programs:
                program = original(self)
                _warm_heap_keys(program, set())
                programs[definition] = program
            return programs[definition]

    ExecutionWorker._get_evaluation_entrypoint = get_evaluation_entrypoint  # type: ignore[method-assign]


def _moto_modules_listed_once() -> None:
    """moto's server lists its package directory (a listdir and an isdir per entry), under the lock every
    request's dispatch takes, to route each request: the installed package does not change while local
    serve runs, so it is listed once."""
    from moto import backends

    listed = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: listed


def _backend_apps_without_debug() -> None:
    """moto builds each service's Flask app with ``debug = True``; in debug mode Flask makes a new class for
    every request that carries a body (its enctype helper, ``flask.debughelpers``), a few percent of local
    serve's time. Errors are answered as moto answers them either way: its handlers turn them into AWS errors."""
    from moto import server
    from moto.moto_server import threaded_moto_server, werkzeug_app

    create = werkzeug_app.create_backend_app
    if getattr(create, "_videogen_no_debug", False):
        return

    def create_backend_app(service: Any) -> Any:
        app = create(service)
        app.debug = False
        return app

    create_backend_app._videogen_no_debug = True  # type: ignore[attr-defined]
    werkzeug_app.create_backend_app = create_backend_app
    threaded_moto_server.create_backend_app = create_backend_app  # type: ignore[attr-defined]
    server.create_backend_app = create_backend_app  # type: ignore[attr-defined]


# The attributes moto's Queue counts by walking every message of the queue.
_QUEUE_COUNTS = (
    "approximate_number_of_messages",
    "approximate_number_of_messages_delayed",
    "approximate_number_of_messages_not_visible",
)
_SQS_CALL = threading.local()


class _UncountedQueue:
    """A moto Queue whose message counts read 0: what SendMessage sees of it (it reads the queue's
    settings, never its counts)."""

    approximate_number_of_messages = approximate_number_of_messages_delayed = 0
    approximate_number_of_messages_not_visible = 0

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


def _sqs_counts_on_demand() -> None:
    """moto's ``Queue.attributes`` counts the queue's messages (three walks over all of them, each message
    reading the clock twice through datetime) and SendMessage reads it once per message for one setting,
    GetQueueAttributes once per attribute named: a queue of n messages costs O(n) per send, so a 100,000-line
    batch cost the square of its lines, which SQS does not. Within SendMessage the counts are skipped,
    within GetQueueAttributes they are counted once per call, and a message's visibility reads the clock
    with ``time.time()`` (moto's own clock is the same clock, through two datetimes)."""
    import moto.sqs.models as sqs

    counted = sqs.Queue.attributes.fget
    millis = sqs.unix_time_millis

    def attributes(self: Any) -> dict[str, Any]:
        if getattr(_SQS_CALL, "sending", False):
            return counted(_UncountedQueue(self))  # type: ignore[no-any-return,misc]
        cache: dict[int, dict[str, Any]] | None = getattr(_SQS_CALL, "counted", None)
        if cache is None:
            return counted(self)  # type: ignore[no-any-return,misc]
        if id(self) not in cache:
            cache[id(self)] = counted(self)  # type: ignore[misc]
        return dict(cache[id(self)])

    def sending(method: Callable[..., Any]) -> Callable[..., Any]:
        def send(*args: Any, **kwargs: Any) -> Any:
            outer = getattr(_SQS_CALL, "sending", False)
            _SQS_CALL.sending = True
            try:
                return method(*args, **kwargs)
            finally:
                _SQS_CALL.sending = outer

        return send

    def counted_once(method: Callable[..., Any]) -> Callable[..., Any]:
        def get_queue_attributes(*args: Any, **kwargs: Any) -> Any:
            _SQS_CALL.counted = {}
            try:
                return method(*args, **kwargs)
            finally:
                _SQS_CALL.counted = None

        return get_queue_attributes

    sqs.Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    sqs.SQSBackend.send_message = sending(sqs.SQSBackend.send_message)  # type: ignore[method-assign]
    sqs.SQSBackend.get_queue_attributes = counted_once(sqs.SQSBackend.get_queue_attributes)  # type: ignore[method-assign]
    sqs.unix_time_millis = lambda dt=None: time.time() * 1000.0 if dt is None else millis(dt)


class _NotPlain(Exception):
    """An attribute value the fast path does not know: moto's own serializer takes it."""


_STRINGS = ("S", "N")
_STRING_SETS = ("SS", "NS")


def _attribute_value(value: Any) -> dict[str, Any]:
    """One DynamoDB AttributeValue as moto's JSON serializer writes it (blobs in base64, the rest as they
    are), without walking the botocore shape member by member; anything unexpected raises _NotPlain."""
    import base64

    if type(value) is not dict:
        raise _NotPlain
    out: dict[str, Any] = {}
    for kind, data in value.items():
        if data is None:
            continue
        if kind in _STRINGS and type(data) is str:
            out[kind] = data
        elif kind in _STRING_SETS and type(data) is list and all(type(item) is str for item in data):
            out[kind] = list(data)
        elif kind == "B" and isinstance(data, bytes | str):
            out[kind] = base64.b64encode(data.encode() if isinstance(data, str) else data).decode()
        elif kind == "BS" and type(data) is list and all(isinstance(item, bytes | str) for item in data):
            out[kind] = [base64.b64encode(i.encode() if isinstance(i, str) else i).decode() for i in data]
        elif kind == "M" and type(data) is dict and all(type(name) is str for name in data):
            out[kind] = {name: _attribute_value(item) for name, item in data.items()}
        elif kind == "L" and type(data) is list:
            out[kind] = [_attribute_value(item) for item in data]
        elif kind in ("NULL", "BOOL") and type(data) is bool:
            out[kind] = data
        else:
            raise _NotPlain
    return out


def _fast_attribute_values() -> None:
    """moto 5.2's response serializer walks every attribute of every item through the botocore shapes,
    with several alias lookups per member: for DynamoDB that was the largest single cost of a local job
    (about a fifth of the process's time). An AttributeValue is plain data whose JSON form is the value
    itself (blobs in base64), so DynamoDB's and its streams' AttributeValues are written directly; the
    rest of each response (its members, headers, errors) is still moto's."""
    from moto.core.serialize import BaseJSONSerializer

    original = BaseJSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if shape.name == "AttributeValue" and self.service_model.service_name in ("dynamodb", "dynamodbstreams"):
            try:
                plain = _attribute_value(value)
            except _NotPlain:
                pass
            else:
                if key:
                    serialized[self.get_serialized_name(shape, key)] = plain
                else:
                    serialized.update(plain)
                return
        original(self, serialized, value, shape, key)

    BaseJSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]


def apply() -> None:
    """Apply the patches once per process (idempotent)."""
    global _applied
    with _lock:
        if _applied:
            return
        from moto.awslambda.models import LambdaFunction
        from moto.events.models import Rule
        from moto.s3 import notifications as s3_notifications

        LambdaFunction._invoke_lambda = _invoke_lambda
        Rule.send_to_targets = _send_to_targets(Rule.send_to_targets)
        # send_event looks the name up in its module at call time, so replacing the attribute suffices.
        s3_notifications._invoke_awslambda = _invoke_awslambda
        s3_notifications._get_s3_event = _s3_event_with_sequencer(s3_notifications._get_s3_event)
        # The ASL interpreter logs every caught error at ERROR level; our Catch paths are expected.
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        _step_functions_caches()
        _fast_attribute_values()
        _shared_programs()
        _moto_modules_listed_once()
        _sqs_counts_on_demand()
        _backend_apps_without_debug()
        moto_caches.apply()
        executions.hook_moto()
        _applied = True
    serialize_dynamodb_writes()


# --- smoke checks ------------------------------------------------------------------------------------
# Each runs the patched path in moto's in-process mock and raises AssertionError if it no longer does
# what the patch claims. mock_aws resets every moto backend: never call these while a LocalStack is up.

_REGION = "us-east-1"


def _client(service: str) -> Any:
    import boto3

    # An explicit AWS endpoint beats AWS_ENDPOINT_URL, so the call is intercepted by mock_aws.
    host = {
        "s3": "s3.amazonaws.com",
        "dynamodbstreams": f"streams.dynamodb.{_REGION}.amazonaws.com",
        "stepfunctions": f"states.{_REGION}.amazonaws.com",
    }.get(service, f"{service}.{_REGION}.amazonaws.com")
    return boto3.client(
        service,
        region_name=_REGION,
        endpoint_url=f"https://{host}",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _refuse_beside_a_stack() -> None:
    if ASYNC_INVOKER is not None:
        raise RuntimeError("a local stack is running in this process: the smoke checks would reset it")


@contextmanager
def _mocked_functions(handlers: dict[str, Handler]) -> Iterator[dict[str, str]]:
    """mock_aws with the patches applied and one function per handler; yields name -> ARN."""
    import io
    import zipfile

    from moto import mock_aws

    _refuse_beside_a_stack()
    apply()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("app.py", "def lambda_handler(event, context):\n    return None\n")
    with mock_aws():
        role = _client("iam").create_role(RoleName="smoke", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        arns = {}
        for name, handler in handlers.items():
            HANDLERS[name] = handler
            arns[name] = _client("lambda").create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": archive.getvalue()},
            )["FunctionArn"]
        try:
            yield arns
        finally:
            for name in handlers:
                HANDLERS.pop(name, None)


class SmokeError(Exception):
    """A handler error whose class name must reach the caller as errorType."""


def check_invoke_patch() -> None:
    """Invoke runs the registered handler in-process (no Docker), with a Powertools-ready context,
    and a raised exception becomes FunctionError with errorType = the exception's class name."""
    contexts: list[Any] = []

    def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
        contexts.append(context)
        return {"echo": event}

    def boom(event: dict[str, Any], context: Any) -> None:
        raise SmokeError("boom")

    with _mocked_functions({"smoke-echo": echo, "smoke-boom": boom}) as arns:
        lam = _client("lambda")
        for _ in range(2):
            answer = lam.invoke(FunctionName="smoke-echo", Payload=b'{"a": 1}')
            assert "FunctionError" not in answer, answer
            assert json.loads(answer["Payload"].read()) == {"echo": {"a": 1}}
        failed = lam.invoke(FunctionName="smoke-boom", Payload=b"{}")
        assert failed.get("FunctionError"), failed
        error = json.loads(failed["Payload"].read())
        assert error == {"errorMessage": "boom", "errorType": "SmokeError"}, error
    first, second = contexts
    assert first.function_name == "smoke-echo" and first.invoked_function_arn == arns["smoke-echo"]
    assert first.aws_request_id != second.aws_request_id  # a fresh request id per call
    assert first.get_remaining_time_in_millis() > 0 and first.memory_limit_in_mb > 0
    assert first.log_group_name == "/aws/lambda/smoke-echo" and first.log_stream_name


def check_eventbridge_lambda_target_patch() -> None:
    """A rule with a Lambda target invokes the function with the full event envelope (unpatched moto
    raises NotImplementedError), only for matching events, while its SQS targets still get the event."""
    seen: list[dict[str, Any]] = []
    with _mocked_functions({"smoke-target": lambda event, context: seen.append(event)}) as arns:
        events, sqs = _client("events"), _client("sqs")
        queue = sqs.create_queue(QueueName="smoke-target")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.create_event_bus(Name="smoke-bus")
        events.put_rule(Name="r", EventBusName="smoke-bus", EventPattern=json.dumps({"detail-type": ["Wanted"]}))
        events.put_targets(
            Rule="r",
            EventBusName="smoke-bus",
            Targets=[{"Id": "fn", "Arn": arns["smoke-target"]}, {"Id": "q", "Arn": queue_arn}],
        )
        entries = [
            {"Source": "smoke", "DetailType": kind, "Detail": '{"n": 1}', "EventBusName": "smoke-bus"}
            for kind in ("Wanted", "Other")
        ]
        assert events.put_events(Entries=entries)["FailedEntryCount"] == 0
        queued = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    assert [event["detail-type"] for event in seen] == ["Wanted"], seen
    assert seen[0]["source"] == "smoke" and seen[0]["detail"] == {"n": 1} and seen[0]["id"]
    assert [json.loads(message["Body"])["detail-type"] for message in queued] == ["Wanted"]


def check_s3_notification_patch() -> None:
    """An S3 Lambda notification reaches the function through invoke_async (so the stack's retries
    and on-failure destination apply), with the event S3 sends and only for matching keys."""
    seen: list[dict[str, Any]] = []
    routed: list[str] = []
    global ASYNC_INVOKER
    with _mocked_functions({"smoke-intake": lambda event, context: seen.append(event)}) as arns:
        s3 = _client("s3")
        s3.create_bucket(Bucket="smoke-bucket")
        s3.put_bucket_notification_configuration(
            Bucket="smoke-bucket",
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "LambdaFunctionArn": arns["smoke-intake"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "requests/"}]}},
                    }
                ]
            },
        )

        def route(fn_arn: str, event: dict[str, Any]) -> None:
            routed.append(fn_arn)
            _moto_async_invoke("123456789012", fn_arn, event)

        ASYNC_INVOKER = route
        try:
            s3.put_object(Bucket="smoke-bucket", Key="requests/a b.json", Body=b"{}")
            s3.put_object(Bucket="smoke-bucket", Key="elsewhere/a.json", Body=b"{}")
        finally:
            ASYNC_INVOKER = None
    assert routed == [arns["smoke-intake"]], routed
    (record,) = seen[0]["Records"]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["bucket"]["name"] == "smoke-bucket"
    assert record["s3"]["object"]["eTag"] and len(record["s3"]["object"]["sequencer"]) == 20


def check_transaction_rollback_patch() -> None:
    """A cancelled transaction changes no item and writes no stream record (moto's whole-table backup is
    replaced by one of the items the transaction names); a transaction that passes is applied."""
    import botocore.exceptions

    with _mocked_functions({}):
        ddb, streams = _client("dynamodb"), _client("dynamodbstreams")
        arn = ddb.create_table(
            TableName="smoke-tx",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        for pk in ("a", "c"):
            ddb.put_item(TableName="smoke-tx", Item={"pk": {"S": pk}, "sk": {"S": "1"}, "n": {"N": "1"}})

        def records() -> int:
            shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
            return len(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])

        def transact(condition: str) -> None:
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": "smoke-tx",
                            "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                            "UpdateExpression": "SET n = n + :one",
                            "ExpressionAttributeValues": {":one": {"N": "1"}},
                        }
                    },
                    {"Put": {"TableName": "smoke-tx", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": "smoke-tx",
                            "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                            "ConditionExpression": condition,
                        }
                    },
                ]
            )

        def items() -> dict[str, Any]:
            return {i["pk"]["S"]: i.get("n", {}).get("N") for i in ddb.scan(TableName="smoke-tx")["Items"]}

        before = records()
        try:
            transact("attribute_not_exists(pk)")
        except botocore.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == "TransactionCanceledException", exc.response
        else:
            raise AssertionError("a transaction whose condition fails was not cancelled")
        assert items() == {"a": "1", "c": "1"}, items()
        assert records() == before, (records(), before)
        transact("attribute_exists(pk)")
        assert items() == {"a": "2", "b": None, "c": "1"}, items()
        assert records() == before + 2, (records(), before)


def check_attribute_value_patch() -> None:
    """Items of every attribute type come back from GetItem, Query and the table's stream exactly as they
    were put, through the direct AttributeValue path (which moto's serializer no longer takes for them)."""
    from moto.core.serialize import BaseJSONSerializer

    item = {
        "pk": {"S": "a"},
        "n": {"N": "1.50"},
        "b": {"B": b"\x00\x01"},
        "bs": {"BS": [b"x", b"y"]},
        "ns": {"NS": ["1", "2"]},
        "ss": {"SS": ["p", "q"]},
        "l": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}, {"B": b"z"}]},
        "m": {"M": {"k": {"S": "v \u00e9 \u2713"}, "e": {"M": {}}, "el": {"L": []}}},
    }
    with _mocked_functions({}):
        assert BaseJSONSerializer._serialize_type_structure.__name__ == "serialize_structure"
        ddb, streams = _client("dynamodb"), _client("dynamodbstreams")
        arn = ddb.create_table(
            TableName="smoke-items",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )["TableDescription"]["LatestStreamArn"]
        ddb.put_item(TableName="smoke-items", Item=item)
        got = ddb.get_item(TableName="smoke-items", Key={"pk": {"S": "a"}}, ConsistentRead=True)["Item"]
        queried = ddb.query(
            TableName="smoke-items", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}}
        )["Items"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        (record,) = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert got == item, got
    assert queried == [item], queried
    assert record["dynamodb"]["NewImage"] == item, record


def check_sqs_counts_patch() -> None:
    """Sends do not count the queue (a send of the 201st message walks no message), and GetQueueAttributes
    still counts what is visible, in flight and delayed, as moto did."""
    import moto.sqs.models as sqs

    walks = 0
    message_visible = sqs.Message.visible

    def visible(self: Any) -> bool:
        nonlocal walks
        walks += 1
        return bool(message_visible.fget(self))  # type: ignore[attr-defined]

    with _mocked_functions({}):
        assert sqs.SQSBackend.send_message.__name__ == "send"
        client = _client("sqs")
        url = client.create_queue(QueueName="smoke-counts")["QueueUrl"]
        for start in range(0, 200, 10):
            entries = [{"Id": str(n), "MessageBody": str(n)} for n in range(start, start + 10)]
            client.send_message_batch(QueueUrl=url, Entries=entries)
        client.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=60)
        client.receive_message(QueueUrl=url, MaxNumberOfMessages=3, VisibilityTimeout=60)
        sqs.Message.visible = property(visible)  # type: ignore[method-assign,assignment]
        try:
            client.send_message(QueueUrl=url, MessageBody="one more")
            assert walks == 0, f"a send walked {walks} messages"
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
            names.append("ApproximateNumberOfMessagesDelayed")
            got = client.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        finally:
            sqs.Message.visible = message_visible  # type: ignore[method-assign]
    assert got == {
        "ApproximateNumberOfMessages": "198",
        "ApproximateNumberOfMessagesNotVisible": "3",
        "ApproximateNumberOfMessagesDelayed": "1",
    }, got


def check_backend_apps_patch() -> None:
    """moto's server builds its service apps without Flask's debug mode, and they still answer."""
    from moto.moto_server import werkzeug_app
    from werkzeug.test import Client

    apply()
    create = werkzeug_app.create_backend_app
    assert create("s3").debug is False
    answer = Client(werkzeug_app.DomainDispatcherApplication(create)).post(
        "/",
        data="Action=ListQueues",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Host": "sqs.us-east-1.amazonaws.com"},
    )
    assert answer.status_code == 200, answer.status_code


def check_moto_caches() -> None:
    """moto_caches.py: each cached path answers as moto's own."""
    _refuse_beside_a_stack()
    moto_caches.check()


def check_execution_reports() -> None:
    """moto's interpreter reports each execution's start and its end, once each, after its status is final:
    one that succeeds, one that fails and one stopped by StopExecution."""
    from moto import mock_aws

    _refuse_beside_a_stack()
    apply()
    reports: list[tuple[str, str, str]] = []
    statuses: dict[str, str] = {}
    done = threading.Event()

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):  # type: ignore[arg-type]
        sfn = _client("stepfunctions")

        def listener(change: str, arn: str, machine: str, when: Any) -> None:
            reports.append((change, arn.rsplit(":", 1)[-1], machine.rsplit(":", 1)[-1]))
            if change == executions.STOPPED:
                statuses[arn.rsplit(":", 1)[-1]] = sfn.describe_execution(executionArn=arn)["status"]
                if len(statuses) == 3:
                    done.set()

        def machine(name: str, states: dict[str, Any]) -> str:
            definition = json.dumps({"StartAt": "S", "States": states})
            role = "arn:aws:iam::123456789012:role/smoke"
            return str(sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"])

        passes = machine("smoke-pass", {"S": {"Type": "Pass", "End": True}})
        fails = machine("smoke-fail", {"S": {"Type": "Fail", "Error": "E", "Cause": "c"}})
        waits = machine("smoke-wait", {"S": {"Type": "Wait", "Seconds": 30, "End": True}})
        executions.LISTENER = listener
        try:
            sfn.start_execution(stateMachineArn=passes, name="p")
            sfn.start_execution(stateMachineArn=fails, name="f")
            stopped = sfn.start_execution(stateMachineArn=waits, name="w")["executionArn"]
            time.sleep(0.5)
            sfn.stop_execution(executionArn=stopped)
            done.wait(20)
        finally:
            executions.LISTENER = None
    assert statuses == {"p": "SUCCEEDED", "f": "FAILED", "w": "ABORTED"}, (statuses, reports)
    assert sorted(reports) == sorted(
        [
            (change, name, f"smoke-{kind}")
            for name, kind in (("p", "pass"), ("f", "fail"), ("w", "wait"))
            for change in (executions.STARTED, executions.STOPPED)
        ]
    ), reports


SMOKE_CHECKS: tuple[Callable[[], None], ...] = (
    check_execution_reports,
    check_moto_caches,
    check_backend_apps_patch,
    check_attribute_value_patch,
    check_sqs_counts_patch,
    check_transaction_rollback_patch,
    check_invoke_patch,
    check_eventbridge_lambda_target_patch,
    check_s3_notification_patch,
)
