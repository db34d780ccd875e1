"""Caches for pure work moto 5.2.5 redoes on every request, found by profiling `videogen local serve` under a
batch (py-spy, GIL samples; each figure is its share of the serve process's samples in a 500-job batch):

* ``method_names_from_class``: every request lists its response class's methods with ``inspect.getmembers``
  to find the action's method (3.8 %). A class's methods do not change while it runs: listed once per class.
* ``BackendDict.__getitem__``: every backend lookup takes moto's global backend lock and copies the dict's
  keys into a list to ask whether the account's backend exists (about 3 %, contended by every thread). Once
  it exists it is returned directly; a reset (which clears the dict) sends the next lookup the long way again.
* EventBridge targets: each event sent to a target without an input transformer applies the default template,
  parsing its eight JSONPaths again with ply (about 3 %). A parsed path is a value (``find`` keeps no state):
  ``jsonpath_ng.ext.parse`` is cached per path.
* DynamoDB's UpdateItem (a sixth of the samples, the costliest call of a job): the update expression is
  parsed and the condition expression lexed on every call, though a handler sends the same few texts every
  time. The update expression's tree is cached per text (moto's validator works on a deep copy of it; nothing
  else writes to it) and the condition's tokens per text (immutable tuples; each parse gets its own deque).

Each is keyed on everything its result depends on, so an answer is the one moto would have computed; the smoke
check below runs each cached path twice and compares it with moto's own.
"""

from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_applied = False
_lock = threading.Lock()
CACHE_SIZE = 4096


def apply() -> None:
    global _applied
    with _lock:
        if _applied:
            return
        _response_method_names()
        _account_backends_without_lock()
        _event_paths()
        _dynamodb_expressions()
        _applied = True


def _response_method_names() -> None:
    from moto.core import responses, utils

    responses.method_names_from_class = functools.cache(utils.method_names_from_class)  # type: ignore[attr-defined]


def _account_backends_without_lock() -> None:
    from moto.core.base_backend import BackendDict

    create = BackendDict.__getitem__

    def getitem(self: Any, account_id: str) -> Any:
        try:
            return dict.__getitem__(self, account_id)
        except KeyError:
            return create(self, account_id)

    BackendDict.__getitem__ = getitem  # type: ignore[method-assign,assignment]


def _event_paths() -> None:
    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=CACHE_SIZE)(jsonpath_ng.ext.parse)  # type: ignore[attr-defined]


def _dynamodb_expressions() -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    parse_update: Callable[[str], Any] = functools.lru_cache(maxsize=CACHE_SIZE)(UpdateExpressionParser.make)
    UpdateExpressionParser.make = classmethod(lambda cls, expression: parse_update(expression))  # type: ignore[method-assign,assignment,misc]

    lex = ConditionExpressionParser._lex_condition_expression
    tokens: dict[str, tuple[Any, ...]] = {}

    def lex_condition_expression(self: Any) -> deque[Any]:
        text = self.condition_expression
        found = tokens.get(text)
        if found is None:
            found = tuple(lex(self))
            if len(tokens) < CACHE_SIZE:
                tokens[text] = found
        return deque(found)

    ConditionExpressionParser._lex_condition_expression = lex_condition_expression  # type: ignore[method-assign]


def check() -> None:
    """The cached paths answer as moto's own: raises AssertionError if not (run by tests/local/test_patches.py)."""
    import inspect

    import jsonpath_ng.ext
    from moto.core import responses, utils
    from moto.dynamodb.comparisons import ConditionExpressionParser, create_condition_expression_parser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    apply()
    from moto.dynamodb.responses import DynamoHandler

    names = responses.method_names_from_class(DynamoHandler)  # type: ignore[attr-defined]
    assert names is responses.method_names_from_class(DynamoHandler), "method names are listed each time"  # type: ignore[attr-defined]
    assert (
        names
        == [n for n, _ in inspect.getmembers(DynamoHandler, inspect.isfunction)]
        == utils.method_names_from_class(DynamoHandler)
    )

    parse = jsonpath_ng.ext.parse  # type: ignore[attr-defined]
    assert parse("$.detail") is parse("$.detail"), "paths are parsed each time"
    expression = "SET a = :a, b = if_not_exists(b, :zero) + :one REMOVE c"
    assert UpdateExpressionParser.make(expression) is UpdateExpressionParser.make(expression)
    values = {":v": {"S": "x"}, ":n": {"N": "1"}}
    condition = "attribute_not_exists(k) OR (#s = :v AND n < :n)"
    parsed = [repr(create_condition_expression_parser(condition, {"#s": "status"}, values).parse()) for _ in range(2)]
    assert parsed[0] == parsed[1], parsed
    assert isinstance(ConditionExpressionParser(condition, {}, {})._lex_condition_expression(), deque)
    _check_in_moto()


def _check_in_moto() -> None:
    """UpdateItem with one expression on different items and values: every item as if each were parsed anew;
    events to an SQS target through the default template, each with its own detail."""
    import json

    import boto3
    from moto import mock_aws

    def client(service: str, host: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name="us-east-1",
            endpoint_url=f"https://{host}.us-east-1.amazonaws.com",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    with mock_aws():
        events, sqs = client("events", "events"), client("sqs", "sqs")
        queue = sqs.create_queue(QueueName="smoke-cache")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="smoke-cache", EventPattern=json.dumps({"source": ["smoke"]}))
        events.put_targets(Rule="smoke-cache", Targets=[{"Id": "q", "Arn": arn}])
        for n in range(2):
            events.put_events(Entries=[{"Source": "smoke", "DetailType": "d", "Detail": json.dumps({"n": n})}])
        received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
        details = sorted(json.loads(m["Body"])["detail"]["n"] for m in received)
        assert details == [0, 1], details

        ddb = client("dynamodb", "dynamodb")
        ddb.create_table(
            TableName="smoke-cache",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        update = {
            "TableName": "smoke-cache",
            "UpdateExpression": "SET v = :v, n = if_not_exists(n, :zero) + :one",
            "ConditionExpression": "attribute_not_exists(k) OR v <> :v",
        }
        for key, value in (("a", "1"), ("b", "2"), ("a", "3")):
            ddb.update_item(
                Key={"k": {"S": key}},
                ExpressionAttributeValues={":v": {"S": value}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
                **update,
            )
        refused = False
        try:
            ddb.update_item(
                Key={"k": {"S": "a"}},
                ExpressionAttributeValues={":v": {"S": "3"}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
                **update,
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            refused = True
        items = {i["k"]["S"]: (i["v"]["S"], i["n"]["N"]) for i in ddb.scan(TableName="smoke-cache")["Items"]}
    assert refused, "a failed condition was not refused"
    assert items == {"a": ("3", "2"), "b": ("2", "1")}, items
