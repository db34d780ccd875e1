"""Local serve's stdout stand-in: whole lines, and each JSON log line filed under its function's log group."""

from __future__ import annotations

import io
import json
import threading

from videogen_local.localmode.output import CURRENT_FUNCTION, LineWriter, stamped


def test_log_lines_are_stamped_with_the_log_group_of_the_function_on_their_thread() -> None:
    target = io.StringIO()
    writer = LineWriter(target)

    def handler(function: str) -> None:
        CURRENT_FUNCTION.name = function
        try:
            for index in range(50):
                writer.write(json.dumps({"message": "job finished", "function_name": "shared", "i": index}))
                writer.write("\n")
        finally:
            CURRENT_FUNCTION.name = None

    names = ("videogen-local-fail", "videogen-local-poll")
    threads = [threading.Thread(target=handler, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = [json.loads(line) for line in target.getvalue().splitlines()]
    assert len(records) == 100
    assert {r["@log"] for r in records} == {"/aws/lambda/videogen-local-fail", "/aws/lambda/videogen-local-poll"}
    assert sum(r["@log"].endswith("fail") for r in records) == 50


def test_metric_lines_and_plain_text_are_left_alone() -> None:
    emf = '{"_aws": {"CloudWatchMetrics": []}, "Jobs": [1]}'
    assert stamped(emf, "f") == emf
    assert stamped("plain text", "f") == "plain text"
    assert stamped("{}", "f") == "{}"
    assert stamped('{"a": 1}', None) == '{"a": 1}'
    assert json.loads(stamped('{"a": 1}', "f")) == {"@log": "/aws/lambda/f", "a": 1}
