"""Structural tests of template.yaml and statemachine/*.asl.json (offline, no AWS, no network).

What `sam validate` / cfn-lint / statelint do not check is checked here: the architecture's names
and wiring, least privilege, dependency cycles of the transformed template, the ASL graph and its
DefinitionSubstitutions, and the contract with the code (environment variables, index, routes).

The SAM transform needs aws-sam-translator. It is used in-process when importable, else through
the SAM CLI's venv (.venv-sam, created by scripts/check_template.sh); without either, the tests
that need the transformed template are skipped with that reason.

The full toolchain (sam validate, cfn-lint, statelint) runs in scripts/check_template.sh; set
VIDEOGEN_TEMPLATE_CHECKS=1 to also run it from pytest.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.template.cfn_template import (
    REPO_ROOT,
    TEMPLATE_PATH,
    dependency_graph,
    find_cycle,
    load_template,
    references,
)
from tests.template.checkov_skips import carry_checkov_skips

SAM_PYTHON = REPO_ROOT / ".venv-sam" / "bin" / "python"
ASL_FILES = sorted((REPO_ROOT / "statemachine").glob("*.asl.json"))

# logical id -> (folder under functions/, name suffix after "<stack>-")
FUNCTIONS = {
    "ApiFunction": ("api", "api"),
    "IntakeS3Function": ("intake_s3", "intake-s3"),
    "IntakeEventFunction": ("intake_event", "intake-event"),
    "SubmitFunction": ("submit", "submit"),
    "PollFunction": ("poll", "poll"),
    "DownloadFunction": ("download", "download"),
    "FailFunction": ("fail", "fail"),
    "PublishFunction": ("publish", "publish"),
    "AuthorizerFunction": ("authorizer", "authorizer"),
    "OpenRouterCallbackFunction": ("openrouter_callback", "openrouter-callback"),
    "CallbackNudgeFunction": ("callback_nudge", "callback-nudge"),
    "WebhookDeliverFunction": ("webhook_deliver", "webhook-deliver"),
    "BatchFunction": ("batch", "batch"),
}
EXPECTED_TIMEOUTS = {
    "ApiFunction": 29,
    "IntakeS3Function": 60,
    "IntakeEventFunction": 60,
    "SubmitFunction": 60,
    "PollFunction": 60,
    "DownloadFunction": 900,
    "FailFunction": 30,
    "PublishFunction": 30,
    "AuthorizerFunction": 10,
    "OpenRouterCallbackFunction": 10,
    "CallbackNudgeFunction": 900,
    "WebhookDeliverFunction": 90,
    "BatchFunction": 900,
}
# Functions the state machine invokes: they must not reference it (that would be a cycle).
WORKFLOW_FUNCTIONS = {"PollFunction", "DownloadFunction", "FailFunction"}
SECRET_READERS = {
    "ApiFunction",
    "IntakeS3Function",
    "IntakeEventFunction",
    "SubmitFunction",
    "PollFunction",
    "DownloadFunction",
    "CallbackNudgeFunction",
    "BatchFunction",
}
COMMON_ENV = {
    "JOBS_TABLE",
    "BUCKET",
    "QUEUE_URL",
    "EVENT_BUS",
    "OPENROUTER_BASE_URL",
    "POLL_INTERVAL_SECONDS",
    "MAX_POLLS",
    "DEFAULT_MODEL",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
BUCKET_NAME_SUB = "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}"
# Actions AWS does not allow to scope to a resource (Step Functions log delivery): Resource "*" is expected.
UNSCOPABLE_ACTIONS = {
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
}


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def _merge(global_value: Any, local_value: Any) -> Any:
    """SAM Globals semantics: maps merge (local wins), lists concatenate, scalars: local wins."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if any(k == "Ref" or k.startswith("Fn::") for k in (*global_value, *local_value)):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


@pytest.fixture(scope="module")
def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Function properties with Globals.Function merged in, by logical id."""
    globals_ = template.get("Globals", {}).get("Function", {})
    return {
        logical_id: _merge(globals_, resource.get("Properties", {}))
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="module")
def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of template.yaml (offline)."""
    try:
        import samtranslator  # noqa: F401
    except ImportError:
        pass
    else:
        from tests.template.cfn_template import translate

        return translate(template)
    if not SAM_PYTHON.exists():
        pytest.skip("aws-sam-translator is not importable and .venv-sam is missing: run scripts/check_template.sh")
    result = subprocess.run(
        [str(SAM_PYTHON), str(Path(__file__).with_name("cfn_template.py")), str(TEMPLATE_PATH)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"SAM transform failed:\n{result.stderr}"
    return json.loads(result.stdout)


def _asl(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(transformed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement of the transformed template: (role or policy id, statement)."""
    for logical_id, resource in transformed["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents = [props["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in _as_list(document["Statement"]):
                yield logical_id, statement


# ------------------------------------------------------------------------------------------ basics


def test_is_a_sam_template_with_the_documented_parameters(template: dict[str, Any]) -> None:
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    params = template["Parameters"]
    assert params["OpenRouterBaseUrl"]["Default"] == "https://openrouter.ai"
    assert params["PollIntervalSeconds"] == {**params["PollIntervalSeconds"], "Type": "Number", "Default": 30}
    assert params["MaxPolls"] == {**params["MaxPolls"], "Type": "Number", "Default": 60}
    assert params["DefaultModel"]["Default"] == "bytedance/seedance-2.0-fast"
    assert params["LogRetentionDays"]["Default"] == 30
    assert params["LogLevel"]["Default"] == "INFO"
    assert "lowercase" in template["Description"], "the description must say the stack name must be lowercase"


@pytest.mark.parametrize(
    "url",
    [
        "https://openrouter.ai",
        "https://openrouter.ai/",
        "https://openrouter.ai/api/v1",
        "https://openrouter.ai/api/v1/",
        "https://proxy.example.com/openrouter",
        "https://proxy.example.com/openrouter/api/v1",
        "https://proxy.example.com/apis/v1",
        "https://openrouter.ai/api",
        "https://openrouter.ai/api/",
        "https://openrouter.ai/api/v2",
        "https://openrouter.ai/api/v1/api/v1",
        "https://openrouter.ai/api/api/v1",
        "https://proxy.example.com/api/openrouter",
        "https://openrouter.ai/?a=1",
        "https://openrouter.ai#x",
        "http://openrouter.ai",
        "openrouter.ai",
    ],
)
def test_the_base_url_parameter_refuses_at_deploy_what_the_functions_would_refuse(
    template: dict[str, Any], url: str
) -> None:
    from videogen.settings import openrouter_base

    # CloudFormation matches AllowedPattern against the whole value (Java regex; this one reads the same in re).
    allowed = re.fullmatch(template["Parameters"]["OpenRouterBaseUrl"]["AllowedPattern"], url) is not None
    try:
        openrouter_base(url)
        accepted = url.startswith("https://")  # the stack talks to OpenRouter over TLS only
    except ValueError:
        accepted = False
    assert allowed == accepted, url


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "ApiUrl",
        "BucketName",
        "EventBusName",
        "JobsTableName",
        "StateMachineArn",
        "SubmitQueueUrl",
        "DeadLetterQueueUrl",
        "OpenRouterApiKeySecretArn",
    ):
        assert name in outputs, name
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${VideosApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"
    }


def test_samconfig() -> None:
    import tomllib

    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["version"] == 0.1
    default = config["default"]
    assert default["global"]["parameters"] == {
        **default["global"]["parameters"],
        "stack_name": "videogen",
        "region": "us-east-1",
    }
    deploy = default["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert deploy["confirm_changeset"] is True
    assert default["build"]["parameters"] == {"cached": True, "parallel": True}
    assert default["validate"]["parameters"]["lint"] is True


# ------------------------------------------------------------------------------------------ functions


def test_the_nine_functions_exist_with_their_names_and_timeouts(functions: dict[str, dict[str, Any]]) -> None:
    assert set(functions) == set(FUNCTIONS)
    for logical_id, (folder, suffix) in FUNCTIONS.items():
        props = functions[logical_id]
        assert props["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{suffix}"}, logical_id
        assert props["CodeUri"] == f"functions/{folder}/", logical_id
        assert props["Timeout"] == EXPECTED_TIMEOUTS[logical_id], logical_id
    assert functions["ApiFunction"]["MemorySize"] == 256
    assert functions["DownloadFunction"]["MemorySize"] == 512


def test_every_function_runs_python312_on_arm64_with_the_layer_and_tracing(
    functions: dict[str, dict[str, Any]],
) -> None:
    for logical_id, props in functions.items():
        assert props["Runtime"] == "python3.12", logical_id
        assert props["Architectures"] == ["arm64"], logical_id
        assert props["Handler"] == "app.lambda_handler", logical_id
        assert {"Ref": "CoreLayer"} in props["Layers"], logical_id
        assert props["Tracing"] == "Active", logical_id


def test_every_function_has_its_own_log_group_with_retention(
    functions: dict[str, dict[str, Any]], resources: dict[str, Any]
) -> None:
    for logical_id, (_, suffix) in FUNCTIONS.items():
        log_group_ref = functions[logical_id]["LoggingConfig"]["LogGroup"]
        assert set(log_group_ref) == {"Ref"}, logical_id
        log_group = resources[log_group_ref["Ref"]]
        assert log_group["Type"] == "AWS::Logs::LogGroup"
        # The name Lambda would use anyway, so nothing else creates it without retention.
        assert log_group["Properties"]["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}-{suffix}"}
        assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_every_log_group_has_retention(resources: dict[str, Any]) -> None:
    groups = {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert len(groups) >= len(FUNCTIONS) + 2  # + state machine + API access logs
    for logical_id, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, logical_id


def test_environment(functions: dict[str, dict[str, Any]]) -> None:
    for logical_id, props in functions.items():
        env = props["Environment"]["Variables"]
        assert set(env) >= COMMON_ENV, f"{logical_id} misses {COMMON_ENV - set(env)}"
        assert env["BUCKET"] == {"Fn::Sub": BUCKET_NAME_SUB}, logical_id
        assert env["QUEUE_URL"] == {"Ref": "SubmitQueue"}
        assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
        assert env["POWERTOOLS_SERVICE_NAME"] == "videogen"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "AWS::StackName"}  # the dashboard's namespace
        if logical_id in SECRET_READERS:
            assert env["OPENROUTER_API_KEY_SECRET"] == {"Ref": "OpenRouterApiKeySecret"}, logical_id
        else:
            assert "OPENROUTER_API_KEY_SECRET" not in env, logical_id
    assert functions["SubmitFunction"]["Environment"]["Variables"]["STATE_MACHINE_ARN"] == {
        "Ref": "VideoJobStateMachine"
    }
    assert "STATE_MACHINE_ARN" in functions["ApiFunction"]["Environment"]["Variables"]


def test_reference_preflight_is_a_parameter_on_by_default_for_the_intake_doors(
    template: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    parameter = template["Parameters"]["ReferencePreflight"]
    assert parameter["Default"] == "on" and parameter["AllowedValues"] == ["on", "off"]
    for logical_id in ("ApiFunction", "IntakeS3Function", "IntakeEventFunction"):
        variables = functions[logical_id]["Environment"]["Variables"]
        assert variables["VIDEOGEN_PREFLIGHT"] == {"Ref": "ReferencePreflight"}, logical_id


def test_environment_names_are_the_ones_the_code_reads(functions: dict[str, dict[str, Any]]) -> None:
    settings = pytest.importorskip("videogen.settings", reason="the videogen package is not installed in this venv")
    known = {name.upper() for name in settings.Settings.model_fields}
    for logical_id, props in functions.items():
        unknown = {n for n in props["Environment"]["Variables"] if not n.startswith("POWERTOOLS_")} - known
        assert not unknown, f"{logical_id}: {unknown} are not Settings fields (videogen/settings.py)"


def test_workflow_functions_do_not_reference_the_state_machine(resources: dict[str, Any]) -> None:
    for logical_id in WORKFLOW_FUNCTIONS:
        assert "VideoJobStateMachine" not in references(resources[logical_id]), logical_id


def test_functions_refer_to_the_bucket_by_name_not_by_ref(resources: dict[str, Any], template: dict[str, Any]) -> None:
    """!Ref ServiceBucket in a function's environment or policy closes the bucket -> notification
    -> function -> bucket cycle. Only the S3 event itself may name the bucket resource."""
    assert "ServiceBucket" not in references(template.get("Globals", {}))
    for logical_id in FUNCTIONS:
        props = {k: v for k, v in resources[logical_id]["Properties"].items() if k != "Events"}
        assert "ServiceBucket" not in references(props), logical_id


def test_every_function_folder_has_a_handler_and_requirements() -> None:
    missing = []
    for folder, _ in FUNCTIONS.values():
        path = REPO_ROOT / "functions" / folder
        assert (path / "requirements.txt").is_file(), f"{path}/requirements.txt is missing (sam build needs it)"
        if not (path / "app.py").is_file():
            missing.append(folder)
    if missing:
        pytest.skip(f"functions/<{','.join(missing)}>/app.py not written yet")


def test_handlers_define_lambda_handler() -> None:
    for folder, _ in FUNCTIONS.values():
        app = REPO_ROOT / "functions" / folder / "app.py"
        if app.is_file():
            assert re.search(r"^def lambda_handler\(", app.read_text(encoding="utf-8"), re.M), app


def test_layer(resources: dict[str, Any]) -> None:
    layer = resources["CoreLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/videogen/"
    assert props["CompatibleRuntimes"] == ["python3.12"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"] == {"BuildMethod": "makefile", "BuildArchitecture": "arm64"}
    makefile = (REPO_ROOT / "layers/videogen/Makefile").read_text()
    assert (
        "build-CoreLayer:" in makefile and "manylinux2014_aarch64" in makefile and "--python-version 3.12" in makefile
    )
    # botocore comes from the runtime: aws-xray-sdk is installed without its dependencies.
    assert (
        "--no-deps" in makefile
        and "aws-xray-sdk" in (REPO_ROOT / "layers/videogen/requirements-nodeps.txt").read_text()
    )
    assert "aws-xray-sdk" not in (REPO_ROOT / "layers/videogen/requirements.txt").read_text()
    assert (REPO_ROOT / "layers/videogen/requirements.txt").is_file()
    assert (REPO_ROOT / "layers/videogen/videogen/__init__.py").is_file()


# ------------------------------------------------------------------------------------------ events, queues


def _events(functions: dict[str, dict[str, Any]], logical_id: str) -> dict[str, Any]:
    return functions[logical_id].get("Events", {})


def test_submit_consumes_the_queue_with_partial_batch_failures(functions: dict[str, dict[str, Any]]) -> None:
    events = _events(functions, "SubmitFunction")
    (sqs,) = [e["Properties"] for e in events.values() if e["Type"] == "SQS"]
    assert sqs["Queue"] == {"Fn::GetAtt": ["SubmitQueue", "Arn"]}
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert sqs["BatchSize"] == 10
    assert sqs["MaximumBatchingWindowInSeconds"] == 1


def test_esm_reports_batch_item_failures_after_transform(transformed: dict[str, Any]) -> None:
    mappings = [
        r["Properties"] for r in transformed["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert len(mappings) == 5  # the submit, callback, webhook and batch queues, and the jobs table's stream
    for mapping in mappings:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    [stream] = [m for m in mappings if "StartingPosition" in m]
    assert stream["EventSourceArn"] == {"Fn::GetAtt": ["JobsTable", "StreamArn"]}
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["OutboxDeadLetterQueue", "Arn"]}
    assert stream["BisectBatchOnFunctionError"] is True and stream["MaximumRetryAttempts"] >= 1
    assert len(stream["FilterCriteria"]["Filters"]) == 1


def test_queue_visibility_is_at_least_six_times_the_submit_timeout(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    visibility = resources["SubmitQueue"]["Properties"]["VisibilityTimeout"]
    assert visibility >= 6 * functions["SubmitFunction"]["Timeout"]


def test_queues_redrive_to_a_dead_letter_queue(resources: dict[str, Any]) -> None:
    queue = resources["SubmitQueue"]["Properties"]
    assert queue["QueueName"] == {"Fn::Sub": "${AWS::StackName}-submit"}
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["SubmitDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    dlq = resources["SubmitDeadLetterQueue"]["Properties"]
    assert dlq["QueueName"] == {"Fn::Sub": "${AWS::StackName}-submit-dlq"}
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["MessageRetentionPeriod"] > queue.get("MessageRetentionPeriod", 4 * 24 * 3600)
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::SQS::Queue":
            assert resource["Properties"].get("SqsManagedSseEnabled") or resource["Properties"].get("KmsMasterKeyId"), (
                logical_id
            )


def test_s3_door(functions: dict[str, dict[str, Any]]) -> None:
    notifications = [e["Properties"] for e in _events(functions, "IntakeS3Function").values() if e["Type"] == "S3"]
    for s3 in notifications:
        assert s3["Bucket"] == {"Ref": "ServiceBucket"}
        assert s3["Events"] in ("s3:ObjectCreated:*", ["s3:ObjectCreated:*"])
    rules = [{r["Name"]: r["Value"] for r in s3["Filter"]["S3Key"]["Rules"]} for s3 in notifications]
    # Single requests, and batch manifests (".jsonl" does not end in ".json"); the answers ending so too
    # (.job.json, .error.json, .batch.json, .errors.jsonl) are skipped by the function (videogen.doors).
    assert rules == [{"prefix": "requests/", "suffix": ".json"}, {"prefix": "requests/", "suffix": ".jsonl"}]
    doors = pytest.importorskip("videogen.doors", reason="the videogen package is not installed in this venv")
    assert set(doors.RECEIPT_SUFFIXES) == {".job.json", ".error.json", ".batch.json", ".errors.jsonl"}


def test_eventbridge_door(functions: dict[str, dict[str, Any]]) -> None:
    (rule,) = [
        e["Properties"] for e in _events(functions, "IntakeEventFunction").values() if e["Type"] == "EventBridgeRule"
    ]
    assert rule["EventBusName"] == {"Ref": "EventBus"}
    assert rule["Pattern"]["detail-type"] == ["VideoRequested"]


API_ROUTES = {
    ("POST", "/videos"),
    ("GET", "/videos"),
    ("GET", "/videos/{id}"),
    ("DELETE", "/videos/{id}"),
    ("GET", "/models"),
    ("GET", "/health"),
    ("GET", "/operator/batches/{id}"),
    ("GET", "/openapi.json"),
    ("GET", "/operator/videos/{id}"),
    ("POST", "/api/v1/videos"),
    ("GET", "/api/v1/videos/models"),
    ("GET", "/api/v1/videos/{id}"),
    ("GET", "/api/v1/videos/{id}/content"),
    ("GET", "/webhooks/secret"),
    ("POST", "/webhooks/secret/rotate"),
    ("GET", "/api/v1/webhooks/secret"),
    ("POST", "/api/v1/webhooks/secret/rotate"),
    ("POST", "/batches"),
    ("GET", "/batches/{id}"),
    ("DELETE", "/batches/{id}"),
    ("GET", "/batches/{id}/jobs"),
}
# OpenRouter's video API, behind the key authorizer instead of IAM.
COMPATIBLE_ROUTES = {route for route in API_ROUTES if route[1].startswith("/api/v1/")}
# Every other method on the job paths reaches the function, which answers 405 (explicit methods win over ANY).
ANY_ROUTES = {
    ("ANY", "/videos"),
    ("ANY", "/videos/{id}"),
    ("ANY", "/batches"),
    ("ANY", "/batches/{id}"),
    ("ANY", "/batches/{id}/jobs"),
}


def test_api_routes(functions: dict[str, dict[str, Any]]) -> None:
    routes = {
        (e["Properties"]["Method"].upper(), e["Properties"]["Path"])
        for e in _events(functions, "ApiFunction").values()
        if e["Type"] == "Api"
    }
    assert routes == API_ROUTES | ANY_ROUTES
    for event in _events(functions, "ApiFunction").values():
        assert event["Properties"]["RestApiId"] == {"Ref": "VideosApi"}


def test_api_routes_match_the_handler() -> None:
    app = REPO_ROOT / "functions/api/app.py"
    if not app.is_file():
        pytest.skip("functions/api/app.py not written yet")
    found = {
        (method.upper(), re.sub(r"<[^>]+>", "{id}", path))
        for method, path in re.findall(
            r"@app\.(get|post|put|delete|patch)\(\"([^\"]+)\"", app.read_text(encoding="utf-8")
        )
    }
    assert found == API_ROUTES


def test_api_uses_iam_auth_tracing_throttling_and_access_logs(resources: dict[str, Any]) -> None:
    api = resources["VideosApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    props = api["Properties"]
    assert props["StageName"] == "v1"
    assert props["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert props["TracingEnabled"] is True
    assert props["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    json.loads(props["AccessLogSetting"]["Format"])  # the access log line is JSON
    (setting,) = props["MethodSettings"]
    assert setting["ThrottlingRateLimit"] > 0 and setting["ThrottlingBurstLimit"] >= setting["ThrottlingRateLimit"]


def test_api_invokes_the_function_through_its_resource_policy(transformed: dict[str, Any]) -> None:
    """AWS_IAM with SAM's default InvokeRole (CALLER_CREDENTIALS) would make API Gateway call Lambda
    with the caller's credentials, so every caller would need lambda:InvokeFunction."""
    (api,) = [r for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    paths = api["Properties"]["Body"]["paths"]
    methods = [(p, m, op) for p, ops in paths.items() for m, op in ops.items()]
    # The api function's routes, ANY on the two job paths (so the function can answer 405) and OpenRouter's
    # callback: IAM-authorised but for the compatible routes (the key authorizer) and the callback (its signature).
    assert len(methods) == len(API_ROUTES) + len(ANY_ROUTES) + 1
    assert all("x-amazon-apigateway-any-method" in paths[p] for p in ("/videos", "/videos/{id}"))
    for path, method, op in methods:
        integration = op["x-amazon-apigateway-integration"]
        assert "credentials" not in integration, f"{method} {path} invokes with caller credentials"
        if path == "/webhooks/openrouter":
            assert (method, op["security"]) == ("post", [{"NONE": []}])
        elif path.startswith("/api/v1/"):
            assert op["security"] == [{"KeyAuthorizer": []}], f"{method} {path} is not behind the key authorizer"
        else:
            assert op["security"] == [{"AWS_IAM": []}], f"{method} {path} is not IAM-authorised"
    permissions = [
        r
        for r in transformed["Resources"].values()
        if r["Type"] == "AWS::Lambda::Permission" and r["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(permissions) == len(methods) + 1  # + the key authorizer's


# ------------------------------------------------------------------------------------------ data


def test_jobs_table(resources: dict[str, Any]) -> None:
    props = resources["JobsTable"]["Properties"]
    assert props["TableName"] == {"Fn::Sub": "${AWS::StackName}-jobs"}
    assert props["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    by_name = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert set(by_name) == {"by_caller", "by_openrouter_job_id", "by_batch"}
    # Sparse (only batch lines carry batch_id), in line order: a batch's jobs and its results file.
    assert by_name["by_batch"] == {
        "IndexName": "by_batch",
        "KeySchema": [
            {"AttributeName": "batch_id", "KeyType": "HASH"},
            {"AttributeName": "batch_line", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    index, by_openrouter_id = by_name["by_caller"], by_name["by_openrouter_job_id"]
    assert index["IndexName"] == "by_caller"
    assert index["KeySchema"] == [
        {"AttributeName": "caller", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    # Sparse (only submitted jobs carry the attribute), keys only: a callback's one lookup.
    assert by_openrouter_id == {
        "IndexName": "by_openrouter_job_id",
        "KeySchema": [{"AttributeName": "openrouter_job_id", "KeyType": "HASH"}],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {
        "id": "S",
        "caller": "S",
        "created_at": "S",
        "openrouter_job_id": "S",
        "batch_id": "S",
        "batch_line": "N",
    }


def test_index_name_is_the_one_the_code_queries(resources: dict[str, Any]) -> None:
    jobs = pytest.importorskip("videogen.jobs", reason="the videogen package is not installed in this venv")
    names = [index["IndexName"] for index in resources["JobsTable"]["Properties"]["GlobalSecondaryIndexes"]]
    assert sorted(names) == sorted([jobs.CALLER_INDEX, jobs.OPENROUTER_INDEX, jobs.BATCH_INDEX])


def test_bucket(resources: dict[str, Any]) -> None:
    props = resources["ServiceBucket"]["Properties"]
    assert props["BucketName"] == {"Fn::Sub": BUCKET_NAME_SUB}
    assert all(
        props["PublicAccessBlockConfiguration"][k] is True
        for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
    )
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert any(
        rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation") == 1 and rule["Status"] == "Enabled"
        for rule in props["LifecycleConfiguration"]["Rules"]
    )
    (policy,) = [r for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert policy["Properties"]["Bucket"] == {"Ref": "ServiceBucket"}
    (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bus_and_secret(resources: dict[str, Any]) -> None:
    assert resources["EventBus"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-bus"}
    secret = resources["OpenRouterApiKeySecret"]["Properties"]
    assert secret["Name"] == {"Fn::Sub": "${AWS::StackName}/openrouter-api-key"}
    assert "GenerateSecretString" in secret  # a placeholder, never a key in the template


# ------------------------------------------------------------------------------------------ KMS, checkov


def _key_statement(resources: dict[str, Any], sid: str) -> dict[str, Any]:
    (statement,) = [
        s for s in resources["OperationsKey"]["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == sid
    ]
    return statement  # type: ignore[no-any-return]


def test_log_groups_and_the_alarm_topic_use_the_stack_key(resources: dict[str, Any]) -> None:
    key = resources["OperationsKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    key_arn = {"Fn::GetAtt": ["OperationsKey", "Arn"]}
    groups = {k: r for k, r in resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    for logical_id, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == key_arn, logical_id
    # CloudWatch Logs may use the key for exactly these log groups (else creating one fails).
    logs = _key_statement(resources, "CloudWatchLogsEncryptsThisStacksLogGroups")
    allowed = {arn["Fn::Sub"] for arn in logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]}
    prefix = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    assert allowed == {prefix + g["Properties"]["LogGroupName"]["Fn::Sub"] for g in groups.values()}
    # CloudWatch alarms cannot publish to a topic under alias/aws/sns: the topic uses the stack key,
    # whose policy lets the stack's alarms (all named <stack>-...) use it.
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == key_arn
    alarms = _key_statement(resources, "CloudWatchAlarmsPublishToTheAlarmTopic")
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}
    pattern = alarms["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Sub"]
    assert pattern.endswith(":alarm:${AWS::StackName}-*")
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert resource["Properties"]["AlarmName"]["Fn::Sub"].startswith("${AWS::StackName}-"), logical_id


def test_every_checkov_skip_has_a_written_reason(resources: dict[str, Any]) -> None:
    skipped = 0
    for logical_id, resource in resources.items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), f"{logical_id}: {skip}"
            assert isinstance(skip.get("comment"), str) and len(skip["comment"]) >= 40, f"{logical_id}: {skip['id']}"
            skipped += 1
    assert skipped, "no checkov skips found: has the Metadata layout changed?"


def test_checkov_skips_reach_the_resources_sam_generates(template: dict[str, Any], transformed: dict[str, Any]) -> None:
    carried = carry_checkov_skips(template, transformed)["Resources"]
    api_skips = template["Resources"]["VideosApi"]["Metadata"]["checkov"]
    stages = [r for r in carried.values() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stages and all(stage["Metadata"]["checkov"] == api_skips for stage in stages)
    function_skips = template["Resources"]["ApiFunction"]["Metadata"]["checkov"]
    assert carried["ApiFunction"]["Metadata"]["checkov"] == function_skips
    assert carried["ApiFunctionRole"]["Metadata"]["checkov"] == function_skips
    # A resource written by hand keeps its own Metadata, even when its id extends a SAM resource's.
    assert "Metadata" not in carried["ApiFunctionLogGroup"]
    assert carried["JobsTable"]["Metadata"] == template["Resources"]["JobsTable"]["Metadata"]


def test_checkov_is_pinned() -> None:
    script = (REPO_ROOT / "scripts/check_template.sh").read_text(encoding="utf-8")
    assert re.search(r"^CHECKOV_VERSION=\d+\.\d+\.\d+$", script, re.M)
    assert "--skip-check" not in script, "skip checks per resource in template.yaml, with the reason"


# ------------------------------------------------------------------------------------------ IAM


def test_no_iam_statement_allows_every_action(transformed: dict[str, Any]) -> None:
    for owner, statement in _statements(transformed):
        if statement["Effect"] != "Allow":
            continue
        assert "NotAction" not in statement and "NotResource" not in statement, owner
        for action in _as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{owner} allows {action}"


def test_wildcard_resources_only_for_unscopable_actions(transformed: dict[str, Any]) -> None:
    for owner, statement in _statements(transformed):
        if statement["Effect"] == "Allow" and "*" in _as_list(statement["Resource"]):
            extra = set(_as_list(statement["Action"])) - UNSCOPABLE_ACTIONS
            assert not extra, f"{owner} allows {extra} on every resource"


def _role_actions(transformed: dict[str, Any], function: str) -> set[str]:
    role = transformed["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    return {
        a
        for owner, st in _statements(transformed)
        if owner == role and st["Effect"] == "Allow"
        for a in _as_list(st["Action"])
    }


def test_each_function_can_do_what_its_code_does(transformed: dict[str, Any]) -> None:
    needs = {
        "ApiFunction": {
            "dynamodb:Query",
            "dynamodb:PutItem",
            "sqs:SendMessage*",
            "s3:GetObject",
            "s3:ListBucket",
            "states:StopExecution",
            "secretsmanager:GetSecretValue",
        },
        "IntakeS3Function": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "sqs:SendMessage*",
            "s3:GetObject",
            "s3:PutObject",
            "s3:DeleteObject",
            "events:PutEvents",
            "secretsmanager:GetSecretValue",
        },
        "IntakeEventFunction": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "sqs:SendMessage*",
            "s3:GetObject",
            "events:PutEvents",
            "secretsmanager:GetSecretValue",
        },
        "SubmitFunction": {
            "dynamodb:UpdateItem",
            "states:StartExecution",
            "s3:GetObject",
            "secretsmanager:GetSecretValue",
        },
        "PollFunction": {"dynamodb:UpdateItem", "secretsmanager:GetSecretValue"},
        "DownloadFunction": {
            "dynamodb:UpdateItem",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListBucketMultipartUploads",
            "secretsmanager:GetSecretValue",
        },
        "FailFunction": {"dynamodb:UpdateItem"},
        "OpenRouterCallbackFunction": {"sqs:SendMessage*", "secretsmanager:GetSecretValue"},
        "CallbackNudgeFunction": {
            "dynamodb:Query",
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "s3:PutObject",
            "s3:AbortMultipartUpload",
            "s3:ListBucketMultipartUploads",
            "secretsmanager:GetSecretValue",
        },
        "PublishFunction": {"dynamodb:GetItem", "dynamodb:UpdateItem", "events:PutEvents", "sqs:SendMessage"},
        "WebhookDeliverFunction": {
            "dynamodb:GetItem",
            "dynamodb:UpdateItem",
            "dynamodb:PutItem",
            "sqs:ChangeMessageVisibility",
            "secretsmanager:GetSecretValue",
        },
    }
    for function, actions in needs.items():
        missing = actions - _role_actions(transformed, function)
        assert not missing, f"{function} lacks {missing}"
    # A job's outcome is announced by the outbox alone: the functions that end jobs cannot publish it.
    for function in (
        "ApiFunction",
        "SubmitFunction",
        "PollFunction",
        "DownloadFunction",
        "FailFunction",
        "CallbackNudgeFunction",
        "WebhookDeliverFunction",
    ):
        assert "events:PutEvents" not in _role_actions(transformed, function), function
    # The public receiver can only queue a nudge: no table, no bucket, no OpenRouter key.
    receiver = _role_actions(transformed, "OpenRouterCallbackFunction")
    assert not any(a.startswith(("dynamodb:", "s3:", "states:")) for a in receiver), receiver
    assert "secretsmanager:GetSecretValue" not in _role_actions(transformed, "FailFunction")
    assert not any(a.startswith("states:") for f in WORKFLOW_FUNCTIONS for a in _role_actions(transformed, f))


def test_s3_access_is_limited_to_the_service_prefixes(transformed: dict[str, Any]) -> None:
    for owner, statement in _statements(transformed):
        actions = _as_list(statement["Action"])
        if statement["Effect"] != "Allow" or not any(a.startswith("s3:") for a in actions):
            continue
        for resource in _as_list(statement["Resource"]):
            arn = resource["Fn::Sub"]
            bucket_arn = f"arn:${{AWS::Partition}}:s3:::{BUCKET_NAME_SUB}"
            if arn == bucket_arn:
                # Bucket-level: listing keys (404 vs 403 on reads), and the download's dead uploads.
                allowed = [["s3:ListBucket"], ["s3:ListBucketMultipartUploads"]]
                assert actions in allowed, owner
            else:
                prefixes = r"/((requests|references|videos|batches)/\*|requests/\*\.(job|error|batch|errors)\.json(l)?)"
                assert re.fullmatch(re.escape(bucket_arn) + prefixes, arn), f"{owner}: {arn}"


# ------------------------------------------------------------------------------------------ cycles


def test_no_circular_dependencies_after_transform(transformed: dict[str, Any]) -> None:
    cycle = find_cycle(dependency_graph(transformed))
    assert cycle is None, "circular dependency: " + " -> ".join(cycle or [])


def test_cycle_detector_sees_the_classic_bucket_cycle(transformed: dict[str, Any]) -> None:
    """Guard for the test above: !Ref ServiceBucket in the intake function's environment must be a cycle."""
    tampered = json.loads(json.dumps(transformed))
    env = tampered["Resources"]["IntakeS3Function"]["Properties"]["Environment"]["Variables"]
    env["BUCKET"] = {"Ref": "ServiceBucket"}
    assert find_cycle(dependency_graph(tampered)) is not None


# ------------------------------------------------------------------------------------------ state machine


def test_state_machine_resource(resources: dict[str, Any]) -> None:
    machine = resources["VideoJobStateMachine"]
    assert machine["Type"] == "AWS::Serverless::StateMachine"
    props = machine["Properties"]
    assert props["Type"] == "STANDARD"
    assert props["Name"] == {"Fn::Sub": "${AWS::StackName}-video-job"}
    assert (REPO_ROOT / props["DefinitionUri"]).is_file()
    assert props["Tracing"] == {"Enabled": True}
    logging = props["Logging"]
    assert logging["Level"] in ("ALL", "ERROR")
    assert logging["IncludeExecutionData"] is False
    assert logging["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"] == {
        "Fn::GetAtt": ["VideoJobStateMachineLogGroup", "Arn"]
    }
    invoked = {p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in props["Policies"] if "LambdaInvokePolicy" in p}
    assert invoked == WORKFLOW_FUNCTIONS


def test_definition_substitutions_cover_every_placeholder(resources: dict[str, Any]) -> None:
    props = resources["VideoJobStateMachine"]["Properties"]
    text = (REPO_ROOT / props["DefinitionUri"]).read_text(encoding="utf-8")
    placeholders = set(re.findall(r"\$\{([^}]+)\}", text))
    substitutions = props["DefinitionSubstitutions"]
    assert placeholders == set(substitutions), f"placeholders {placeholders} vs substitutions {set(substitutions)}"
    assert substitutions == {
        "PollFunctionArn": {"Fn::GetAtt": ["PollFunction", "Arn"]},
        "DownloadFunctionArn": {"Fn::GetAtt": ["DownloadFunction", "Arn"]},
        "FailFunctionArn": {"Fn::GetAtt": ["FailFunction", "Arn"]},
    }


def _walk_machines(machine: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """The machine and every nested one (Parallel branches, Map iterators/processors)."""
    yield where or "<root>", machine
    for name, state in machine["States"].items():
        for index, branch in enumerate(state.get("Branches", [])):
            yield from _walk_machines(branch, f"{where}/{name}[{index}]")
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                yield from _walk_machines(state[key], f"{where}/{name}")


def _targets(state: dict[str, Any]) -> list[str]:
    targets = [state[k] for k in ("Next", "Default") if k in state]
    targets += [choice["Next"] for choice in state.get("Choices", [])]
    targets += [catch["Next"] for catch in state.get("Catch", [])]
    return targets


@pytest.fixture(params=ASL_FILES, ids=[p.name for p in ASL_FILES])
def asl_path(request: pytest.FixtureRequest) -> Path:
    return request.param  # type: ignore[no-any-return]


def test_asl_files_exist() -> None:
    assert ASL_FILES, "no statemachine/*.asl.json"


def test_asl_graph(asl_path: Path) -> None:
    for where, machine in _walk_machines(_asl(asl_path)):
        states = machine["States"]
        assert machine["StartAt"] in states, f"{where}: StartAt {machine['StartAt']!r} is not a state"
        for name, state in states.items():
            for target in _targets(state):
                assert target in states, f"{where}: {name} -> {target!r}, no such state"
            if state["Type"] == "Choice":
                assert "Next" not in state and "End" not in state
            elif state["Type"] not in ("Succeed", "Fail"):
                assert ("Next" in state) != bool(state.get("End")), f"{where}: {name} needs exactly one of Next / End"
        reachable, todo = set(), [machine["StartAt"]]
        while todo:
            name = todo.pop()
            if name not in reachable:
                reachable.add(name)
                todo.extend(_targets(states[name]))
        assert reachable == set(states), f"{where}: unreachable states {set(states) - reachable}"
        terminal = [n for n, s in states.items() if s.get("End") or s["Type"] in ("Succeed", "Fail")]
        assert terminal, f"{where}: no terminal state"


def test_asl_tasks_retry_and_catch(asl_path: Path) -> None:
    lambda_errors = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException"}
    for where, machine in _walk_machines(_asl(asl_path)):
        states = machine["States"]
        for name, state in states.items():
            if state["Type"] != "Task":
                continue
            catches = state.get("Catch", [])
            assert catches, f"{where}: task {name} has no Catch"
            assert any("States.ALL" in c["ErrorEquals"] for c in catches), f"{where}: {name} does not catch States.ALL"
            if not state.get("Retry"):
                # Allowed only for a task that records a failure: its Catch ends in a Fail state.
                assert all(states[c["Next"]]["Type"] == "Fail" for c in catches), f"{where}: task {name} has no Retry"
                continue
            retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            if state["Resource"].startswith("arn:aws:states:::lambda:invoke"):
                assert "States.ALL" in retried or lambda_errors <= retried, (
                    f"{where}: {name} misses {lambda_errors - retried}"
                )
            for retry in state["Retry"]:
                if "BackoffRate" in retry:  # statelint 3.1 rejects an integer BackoffRate (write 2.0)
                    assert isinstance(retry["BackoffRate"], float), f"{where}: {name} BackoffRate must be a float"


def test_asl_uses_jsonpath_not_jsonata(asl_path: Path) -> None:
    text = asl_path.read_text(encoding="utf-8")
    assert "JSONata" not in text and "{%" not in text, "moto (local mode and workflow tests) cannot run JSONata"


def test_asl_parses_with_the_moto_interpreter(asl_path: Path) -> None:
    parser = pytest.importorskip("moto.stepfunctions.parser.asl.parse.asl_parser", reason="moto is not installed")
    text = re.sub(
        r"\$\{(\w+)\}",
        lambda m: f"arn:aws:lambda:us-east-1:123456789012:function:videogen-{m.group(1)}",
        asl_path.read_text(),
    )
    program, _ = parser.AmazonStateLanguageParser.parse(text)
    assert program is not None


# ------------------------------------------------------------------------------------------ full toolchain


@pytest.mark.skipif(
    os.environ.get("VIDEOGEN_TEMPLATE_CHECKS") != "1",
    reason="set VIDEOGEN_TEMPLATE_CHECKS=1 to run scripts/check_template.sh (make template-check runs it directly)",
)
def test_check_template_script() -> None:
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "scripts/check_template.sh")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))


# ------------------------------------------------------------------------------------------ API keys


def test_compatible_routes_take_tenant_keys_and_the_others_iam(functions: dict[str, dict[str, Any]]) -> None:
    for event in _events(functions, "ApiFunction").values():
        route = (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        auth = event["Properties"].get("Auth", {}).get("Authorizer")
        assert auth == ("KeyAuthorizer" if route in COMPATIBLE_ROUTES else None), route


def test_key_authorizer_caches_per_key_and_answers_in_openrouters_envelope(resources: dict[str, Any]) -> None:
    from videogen_local.localmode import authorizer as local

    auth = resources["VideosApi"]["Properties"]["Auth"]
    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    key = auth["Authorizers"]["KeyAuthorizer"]
    assert key["FunctionArn"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert key["FunctionPayloadType"] == "REQUEST"
    assert key["Identity"] == {"Headers": ["Authorization"], "ReauthorizeEvery": 60}
    responses = resources["VideosApi"]["Properties"]["GatewayResponses"]
    # Local mode answers exactly what the gateway does.
    for name, body in (
        ("UNAUTHORIZED", local.UNAUTHORIZED_BODY),
        ("ACCESS_DENIED", local.ACCESS_DENIED_BODY),
        ("AUTHORIZER_FAILURE", local.AUTHORIZER_FAILED_BODY),
    ):
        assert responses[name]["StatusCode"] == body["error"]["code"]
        assert json.loads(responses[name]["ResponseTemplates"]["application/json"]) == body, name
    throttled = json.loads(responses["THROTTLED"]["ResponseTemplates"]["application/json"])
    assert responses["THROTTLED"]["StatusCode"] == throttled["error"]["code"] == 429


def test_throttling_and_unknown_routes_answer_in_both_apis_error_shape_locally_as_deployed(
    resources: dict[str, Any], functions: dict[str, dict[str, Any]]
) -> None:
    from videogen_local.localmode import front_door, throttle

    props = resources["VideosApi"]["Properties"]
    responses = props["GatewayResponses"]
    gateway_bodies = (
        ("THROTTLED", throttle.THROTTLED_BODY),
        ("MISSING_AUTHENTICATION_TOKEN", front_door.NOT_FOUND_BODY),
    )
    for name, body in gateway_bodies:
        assert responses[name]["StatusCode"] == body["error"]["code"], name
        assert json.loads(responses[name]["ResponseTemplates"]["application/json"]) == body, name
    # An unknown route is a 404 (not the default bare 403), with error.message as the IAM API's clients read it.
    assert front_door.NOT_FOUND_BODY["error"]["code"] == 404 and front_door.NOT_FOUND_BODY["error"]["message"]
    # The local front door throttles as the stage does.
    [settings] = props["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] == throttle.DEFAULT_RATE
    assert settings["ThrottlingBurstLimit"] == throttle.DEFAULT_BURST
    # ... and knows the template's routes, so that it answers the gateway's 404 for the same requests.
    declared = {
        (event["Properties"]["Method"].upper(), event["Properties"]["Path"])
        for function in functions
        for event in _events(functions, function).values()
        if event["Type"] == "Api" and event["Properties"].get("RestApiId") == {"Ref": "VideosApi"}
    }
    assert declared == front_door.ROUTES


def test_keys_table(resources: dict[str, Any], template: dict[str, Any]) -> None:
    table = resources["KeysTable"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "key_id", "KeyType": "HASH"}]
    assert props["SSESpecification"] == {"SSEEnabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert template["Outputs"]["KeysTableName"]["Value"] == {"Ref": "KeysTable"}
    env = resources["AuthorizerFunction"]["Properties"]["Environment"]["Variables"]
    assert env["KEYS_TABLE"] == {"Ref": "KeysTable"}


def test_only_the_authorizer_reads_the_keys(transformed: dict[str, Any]) -> None:
    readers = {
        owner
        for owner, statement in _statements(transformed)
        if any(
            isinstance(r, dict) and r.get("Fn::GetAtt", [None])[0] == "KeysTable"
            for r in _as_list(statement.get("Resource", []))
        )
    }
    assert readers == {"AuthorizerFunctionRole"} or readers == {"AuthorizerFunction"}, readers
    assert _role_actions(transformed, "AuthorizerFunction") >= {"dynamodb:GetItem", "dynamodb:UpdateItem"}


def test_submissions_at_once_are_bounded_by_a_parameter(
    functions: dict[str, dict[str, Any]], template: dict[str, Any]
) -> None:
    (queue,) = [e["Properties"] for e in _events(functions, "SubmitFunction").values() if e["Type"] == "SQS"]
    assert queue["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "SubmitMaxConcurrency"}}
    parameter = template["Parameters"]["SubmitMaxConcurrency"]
    assert parameter["Default"] == 10 and parameter["MinValue"] == 2  # Lambda's smallest maximum


def test_webhooks_are_retried_on_the_schedule_then_dead_lettered(resources: dict[str, Any]) -> None:
    from videogen.webhooks import MAX_ATTEMPTS, RETRY_DELAYS
    from videogen_local.localmode.stack import LOCAL_WEBHOOK_RETRY_DELAYS

    queue = resources["WebhookQueue"]["Properties"]
    # One receive per attempt: the DLQ takes the message after the schedule's last attempt, not before.
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_ATTEMPTS
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "Arn"]}
    assert queue["MessageRetentionPeriod"] > sum(RETRY_DELAYS) >= 24 * 3600
    assert max(RETRY_DELAYS) <= 43200  # SQS's longest visibility timeout
    assert len(LOCAL_WEBHOOK_RETRY_DELAYS.split(",")) == len(RETRY_DELAYS)  # locally as many attempts, faster
    rule = resources["WebhookResultsRule"]["Properties"]
    assert rule["EventPattern"]["detail"] == {"webhook_requested": [True]}
    assert rule["Targets"] == [{"Id": "webhook-queue", "Arn": {"Fn::GetAtt": ["WebhookQueue", "Arn"]}}]
    alarm = resources["WebhookDeadLetterQueueAlarm"]["Properties"]
    assert alarm["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["WebhookDeadLetterQueue", "QueueName"]}
