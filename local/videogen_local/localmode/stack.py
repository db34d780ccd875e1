"""The local stack: moto in server mode on loopback, wired like template.yaml, running the real
handlers and executing the real state-machine definition. See ../shared/notes/offline-aws.md for
why each piece is done the way it is."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import socket
import tempfile
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from videogen_local.localmode import executions, in_process, metrics, patches
from videogen_local.localmode.async_invoke import AsyncConfig, AsyncInvoker
from videogen_local.localmode.authorizer import LocalAuthorizer
from videogen_local.localmode.aws_faults import CRASHING_FUNCTIONS, HANDLER_SERVICES, AwsFaults
from videogen_local.localmode.executions import ENDED, ExecutionWatcher
from videogen_local.localmode.front_door import CALLBACK_PATH, STAGE, FrontDoor
from videogen_local.localmode.handlers import load_all, load_function, repository_root
from videogen_local.localmode.iam_identity import SigV4Identities
from videogen_local.localmode.names import Names
from videogen_local.localmode.sqs_poller import SqsPoller
from videogen_local.localmode.stream_poller import StreamPoller, StreamSource, lambda_invoker
from videogen_local.localmode.throttle import DEFAULT_BURST, DEFAULT_RATE, TokenBucket, parse_throttle

log = logging.getLogger("videogen.local")
SIMULATOR_KEY = "sk-sim-local-0000000000000000"
LOCAL_VISIBILITY_SECONDS = 5  # deployed: 6 x the submit timeout; locally short so retries show up fast
MAX_RECEIVE_COUNT = 5
INTAKE_RETRY_ATTEMPTS = 2  # the intake functions' EventInvokeConfig.MaximumRetryAttempts
# The functions that keep the current event in module state (see patches.ONE_AT_A_TIME).
ONE_EVENT_AT_A_TIME = ("api", "submit", "publish", "batch")
# As template.yaml: MemorySize (Globals 256, download 512) and Timeout per function.
MEMORY_MB = {"download": 512}
TIMEOUT_SECONDS = {"api": 29, "download": 900, "fail": 30, "publish": 30, "webhook_deliver": 90, "batch": 900}
# Outbound webhooks' retry schedule, locally seconds instead of 5 s ... 10 h (videogen.webhooks.RETRY_DELAYS):
# as many attempts as deployed, so a receiver that is down for a while is seen retried, then dead-lettered.
LOCAL_WEBHOOK_RETRY_DELAYS = "1,1,2,2,3,3,3"
# The batch queue's visibility timeout, and the batch function's lease below it: a batch whose invocation
# died is taken up again after a minute (deployed: 6 x the 900 s timeout and a 960 s lease).
BATCH_VISIBILITY_SECONDS = 60

# moto's state is process-wide (the server only serves it): one local stack per process.
_running_lock = threading.Lock()
_running: LocalStack | None = None


@dataclass
class LocalStackConfig:
    poll_interval: int = 1
    max_polls: int = 60
    api_port: int = 0
    stack_name: str = "videogen-local"
    # OpenRouter: base URL and key; both None → the built-in simulator.
    openrouter_base_url: str | None = None
    openrouter_api_key: str | None = None
    simulator_api_key: str = SIMULATOR_KEY
    simulator_polls_to_complete: int = 3
    simulator_max_render_height: int | None = None
    simulator_fault_rate: float = 0.0
    simulator_fault_seed: int | None = None
    # Jobs end this long after submission whoever polls (real generation time); None: after N polls.
    simulator_seconds_to_complete: float | None = None
    # Completion callbacks (OPENROUTER_WEBHOOK_SECRET): the signing secret shared with the simulator, which then
    # calls the receiver behind the front door. With the real OpenRouter nothing public can be called back:
    # callbacks stay off and the poll loop alone finds each job's end.
    webhook_secret: str | None = None
    # Chaos runs: AWS-side faults (aws_faults.py) at this rate; 0 = none. Their counts go to
    # aws_fault_file (JSON; a temporary file when None), named in info["aws_faults_file"].
    aws_fault_rate: float = 0.0
    aws_fault_seed: int | None = None
    # The share of door events (S3 notifications, VideoRequested) redelivered and of API answers dropped, while
    # AWS faults are on; None: aws_fault_rate.
    aws_door_fault_rate: float | None = None
    aws_fault_file: Path | None = None
    log_level: str = "WARNING"
    queue_visibility_seconds: int = LOCAL_VISIBILITY_SECONDS
    # Lambda retries failed asynchronous invocations after about 1 and 2 minutes; locally seconds.
    async_retry_delay_seconds: float = 1.0
    # How often the stand-in for Step Functions' status-change events handles the executions moto reported.
    execution_watch_seconds: float = 0.5
    extra_env: dict[str, str] = field(default_factory=dict)
    # Where the metrics are recorded for `videogen dashboard` (localmode/metrics.py); None: not recorded.
    metrics_file: Path | None = None
    # How often the submit queue and both DLQs are sampled for AWS/SQS (CloudWatch: every minute).
    queue_sample_seconds: float = 2.0
    # The key authorizer's cache (template: ReauthorizeEvery, 60 s): a revoked key works until it expires.
    key_authorizer_cache_seconds: float = 60.0
    # Stage throttling (template: MethodSettings, 50 rps, burst 100) as (rate, burst); None: off.
    # VIDEOGEN_API_THROTTLE="rate,burst" (tests use a tiny one to see the gateway's 429) or "off".
    api_throttle: tuple[float, int] | None = (DEFAULT_RATE, DEFAULT_BURST)
    # Reference preflight (videogen.preflight), on as deployed; allow_private lets it fetch loopback and plain
    # http (tests, simulators), which the deployed rules refuse.
    preflight: bool = True
    preflight_allow_private: bool = False
    # Outbound webhooks to loopback and plain http receivers (tests); off: the deployed rules (https, public).
    webhooks_allow_private: bool = False
    webhook_retry_delays: str = LOCAL_WEBHOOK_RETRY_DELAYS
    # The submit queue's ScalingConfig.MaximumConcurrency (template SubmitMaxConcurrency, default 10): that
    # many submit invocations at once, each in an execution environment of its own (VIDEOGEN_SUBMIT_MAX_CONCURRENCY).
    submit_max_concurrency: int = 10
    # The credit breaker (videogen.breaker): the first probe after a trip, and the most probes are apart.
    breaker_probe_seconds: float = 2.0
    breaker_max_probe_seconds: float = 10.0

    @classmethod
    def from_env(cls, **overrides: Any) -> LocalStackConfig:
        """OPENROUTER_BASE_URL / OPENROUTER_API_KEY: only a key → the real OpenRouter; neither → the simulator."""
        base = os.environ.get("OPENROUTER_BASE_URL") or None
        key = os.environ.get("OPENROUTER_API_KEY") or None
        if key and not base:
            base = "https://openrouter.ai"
        overrides.setdefault("webhook_secret", os.environ.get("OPENROUTER_WEBHOOK_SECRET") or None)
        config = cls(openrouter_base_url=base, openrouter_api_key=key, **overrides)
        if os.environ.get("VIDEOGEN_SIMULATOR_API_KEY"):
            config.simulator_api_key = os.environ["VIDEOGEN_SIMULATOR_API_KEY"]
        # Chaos runs: the simulator fails this share of calls on every edge (see sim/server.py FAULTS).
        if os.environ.get("VIDEOGEN_SIM_FAULT_RATE"):
            config.simulator_fault_rate = float(os.environ["VIDEOGEN_SIM_FAULT_RATE"])
        if os.environ.get("VIDEOGEN_SIM_FAULT_SEED"):
            config.simulator_fault_seed = int(os.environ["VIDEOGEN_SIM_FAULT_SEED"])
        if os.environ.get("VIDEOGEN_AWS_FAULT_RATE"):
            config.aws_fault_rate = float(os.environ["VIDEOGEN_AWS_FAULT_RATE"])
        if os.environ.get("VIDEOGEN_AWS_DOOR_FAULT_RATE"):
            config.aws_door_fault_rate = float(os.environ["VIDEOGEN_AWS_DOOR_FAULT_RATE"])
        if os.environ.get("VIDEOGEN_AWS_FAULT_SEED"):
            config.aws_fault_seed = int(os.environ["VIDEOGEN_AWS_FAULT_SEED"])
        if os.environ.get("VIDEOGEN_AWS_FAULT_FILE"):
            config.aws_fault_file = Path(os.environ["VIDEOGEN_AWS_FAULT_FILE"])
        if os.environ.get("VIDEOGEN_KEY_AUTHORIZER_CACHE_SECONDS"):
            config.key_authorizer_cache_seconds = float(os.environ["VIDEOGEN_KEY_AUTHORIZER_CACHE_SECONDS"])
        if os.environ.get("VIDEOGEN_API_THROTTLE"):
            config.api_throttle = parse_throttle(os.environ["VIDEOGEN_API_THROTTLE"])
        if os.environ.get("VIDEOGEN_SIM_SECONDS_TO_COMPLETE"):
            config.simulator_seconds_to_complete = float(os.environ["VIDEOGEN_SIM_SECONDS_TO_COMPLETE"])
        if os.environ.get("VIDEOGEN_SUBMIT_MAX_CONCURRENCY"):
            config.submit_max_concurrency = max(1, int(os.environ["VIDEOGEN_SUBMIT_MAX_CONCURRENCY"]))
        if os.environ.get("VIDEOGEN_SIM_RENDER_HEIGHT"):
            config.simulator_max_render_height = int(os.environ["VIDEOGEN_SIM_RENDER_HEIGHT"])
        return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LocalStack:
    def __init__(self, config: LocalStackConfig | None = None) -> None:
        self.config = config or LocalStackConfig()
        self.names = Names(stack=self.config.stack_name)
        self.simulator: Any = None
        self._server: Any = None
        self._poller: SqsPoller | None = None
        self._callback_poller: SqsPoller | None = None
        self._webhook_poller: SqsPoller | None = None
        self._batch_poller: SqsPoller | None = None
        self.callbacks = "off"
        self._stream_poller: StreamPoller | None = None
        self._front_door: FrontDoor | None = None
        self._async_invoker: AsyncInvoker | None = None
        self._watcher: ExecutionWatcher | None = None
        self._queue_sampler: metrics.QueueSampler | None = None
        self._faults: AwsFaults | None = None
        self._saved_env: dict[str, str | None] = {}
        self.info: dict[str, Any] = {}

    # --- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object | type[BaseException] | TracebackType | None) -> None:
        self.stop()

    def start(self) -> dict[str, Any]:
        global _running
        with _running_lock:
            if _running is not None:
                raise RuntimeError("a LocalStack is already running in this process (moto's state is process-wide)")
            _running = self
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> dict[str, Any]:
        from moto.core import config as moto_config
        from moto.server import ThreadedMotoServer

        patches.apply()
        if self.config.metrics_file is not None:
            metrics.open_file(self.config.metrics_file)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        # Step Functions really executes definitions; Lambda keeps its Docker mode, whose single
        # Docker-touching method is patched to run the handlers in-process.
        moto_config.default_user_config["stepfunctions"]["execute_state_machine"] = True
        port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        in_process.serve(port)  # the calls made in this process skip the server (in_process.py)
        endpoint = f"http://127.0.0.1:{port}"
        # moto's state lives in this process, not in the server: start from a clean slate.
        import httpx

        httpx.post(f"{endpoint}/moto-api/reset", timeout=30).raise_for_status()

        base_url, api_key = self._openrouter()
        # The front door's port is chosen now: the callback URL handed to submit is built from it.
        api_port = self.config.api_port or free_port()
        callback_url, self.callbacks = self._callbacks(api_port)
        self._set_env(
            {
                "AWS_ENDPOINT_URL": endpoint,
                # The ASL interpreter calls Lambda at localhost:$MOTO_PORT.
                "MOTO_PORT": str(port),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": self.names.region,
                "AWS_REGION": self.names.region,
                "JOBS_TABLE": self.names.table,
                "KEYS_TABLE": self.names.keys_table,
                "BUDGETS_TABLE": self.names.budgets_table,
                "CONTROL_TABLE": self.names.control_table,
                # The credit breaker's probes (deployed 30 s doubling to 15 min): seconds here.
                "BREAKER_PROBE_SECONDS": str(self.config.breaker_probe_seconds),
                "BREAKER_MAX_PROBE_SECONDS": str(self.config.breaker_max_probe_seconds),
                "BATCHES_TABLE": self.names.batches_table,
                "BATCH_LEASE_SECONDS": str(BATCH_VISIBILITY_SECONDS - 5),
                "BUCKET": self.names.bucket,
                "EVENT_BUS": self.names.event_bus,
                "STATE_MACHINE_ARN": self.names.state_machine_arn,
                "OPENROUTER_BASE_URL": base_url,
                "POLL_INTERVAL_SECONDS": str(self.config.poll_interval),
                "MAX_POLLS": str(self.config.max_polls),
                # Deployed, a submit claim (120 s) goes stale before the message's first redelivery (the
                # visibility timeout, 360 s). Locally the visibility timeout is seconds: keep the claim
                # below it, or a submit that died after claiming is redelivered only to find its claim
                # busy until the message is dead-lettered and the job stays queued.
                "SUBMIT_CLAIM_SECONDS": str(max(1, self.config.queue_visibility_seconds - 1)),
                "DEFAULT_MODEL": "bytedance/seedance-2.0-fast",
                "POWERTOOLS_SERVICE_NAME": "videogen",
                "POWERTOOLS_METRICS_NAMESPACE": self.config.stack_name,  # as deployed: one namespace per stack
                "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", self.config.log_level),
                "VIDEOGEN_PREFLIGHT": "on" if self.config.preflight else "off",
                "VIDEOGEN_PREFLIGHT_ALLOW_PRIVATE": "1" if self.config.preflight_allow_private else "0",
                "VIDEOGEN_WEBHOOKS_ALLOW_PRIVATE": "1" if self.config.webhooks_allow_private else "0",
                "WEBHOOK_SIGNING_TABLE": self.names.webhook_signing_table,
                "WEBHOOK_RETRY_DELAYS": self.config.webhook_retry_delays,
                **self.config.extra_env,
            }
        )
        # The key goes where the deployed functions find it: Secrets Manager (never the environment).
        os.environ.pop("OPENROUTER_API_KEY", None)
        os.environ.pop("OPENROUTER_WEBHOOK_SECRET", None)  # likewise the signing secret
        self._reset_core_caches()

        import boto3
        from botocore.config import Config

        session = boto3.session.Session()
        clients = {
            name: session.client(name)
            for name in ("s3", "sqs", "dynamodb", "events", "stepfunctions", "iam", "lambda", "secretsmanager")
        }
        # The stand-ins for API Gateway, the SQS event source mapping and asynchronous invocation call Lambda
        # once per delivery, as AWS does: botocore's own retries would run a handler twice when moto is slow
        # to answer (a second job for one POST /videos), and Lambda may run for up to 15 minutes.
        invoker = session.client(
            "lambda", config=Config(retries={"total_max_attempts": 1}, read_timeout=900, max_pool_connections=50)
        )
        secret_arn = clients["secretsmanager"].create_secret(Name=self.names.secret, SecretString=api_key)["ARN"]
        os.environ["OPENROUTER_API_KEY_SECRET"] = secret_arn
        if callback_url and self.config.webhook_secret:
            webhook_arn = clients["secretsmanager"].create_secret(
                Name=self.names.webhook_secret, SecretString=self.config.webhook_secret
            )["ARN"]
            os.environ["OPENROUTER_WEBHOOK_SECRET_ID"] = webhook_arn
            os.environ["OPENROUTER_CALLBACK_URL"] = callback_url
        # The key owners' webhook secrets are derived from (template: WebhookSigningKeySecret, generated).
        signing_key_secret = os.environ["WEBHOOK_SIGNING_KEY_SECRET"] = clients["secretsmanager"].create_secret(
            Name=self.names.webhook_signing_key, SecretString=secrets.token_urlsafe(48)
        )["ARN"]
        from videogen.webhooks import parse_delays

        # As deployed: one receive per attempt, the DLQ after the schedule's last (template: maxReceiveCount 8).
        webhook_queue_url, webhook_queue_arn, webhook_dlq_url = self._queue_with_dlq(
            clients["sqs"],
            self.names.webhook_queue,
            self.names.webhook_dead_letter_queue,
            max_receive_count=len(parse_delays(self.config.webhook_retry_delays)) + 1,
        )
        os.environ["WEBHOOK_QUEUE_URL"] = webhook_queue_url
        callback_queue_url, callback_queue_arn, callback_dlq_url = self._create_callback_queues(clients["sqs"])
        os.environ["CALLBACK_QUEUE_URL"] = callback_queue_url
        queue_url, queue_arn, dlq_url, intake_dlq_url = self._create_queues(clients["sqs"])
        outbox_dlq_url = clients["sqs"].create_queue(QueueName=self.names.outbox_dead_letter_queue)["QueueUrl"]
        os.environ["QUEUE_URL"] = queue_url
        batch_queue_url, batch_queue_arn, batch_dlq_url = self._queue_with_dlq(
            clients["sqs"],
            self.names.batch_queue,
            self.names.batch_dead_letter_queue,
            visibility=BATCH_VISIBILITY_SECONDS,
        )
        os.environ["BATCH_QUEUE_URL"] = batch_queue_url
        self._reset_core_caches()

        self._create_table(clients["dynamodb"])
        clients["s3"].create_bucket(Bucket=self.names.bucket)
        self._create_functions(clients["iam"], clients["lambda"])
        self._create_state_machine(clients["stepfunctions"])
        self._faults = self._start_faults()
        # S3 notifications and EventBridge targets: Lambda's asynchronous invocation semantics (and, with AWS
        # faults on, their at-least-once delivery at the intake doors).
        intake = AsyncConfig(maximum_retry_attempts=INTAKE_RETRY_ATTEMPTS, on_failure_queue_url=intake_dlq_url)
        self._async_invoker = AsyncInvoker(
            invoker,
            session.client("sqs"),
            {self.names.function("intake_s3"): intake, self.names.function("intake_event"): intake},
            retry_delay_seconds=self.config.async_retry_delay_seconds,
            faults=self._faults,
            doors={self.names.function("intake_s3"): "s3", self.names.function("intake_event"): "eventbridge"},
        )
        self._async_invoker.start()
        patches.ASYNC_INVOKER = self._async_invoker
        results_url = self._create_bus(clients["events"], clients["sqs"], webhook_queue_arn)
        clients["s3"].put_bucket_notification_configuration(
            Bucket=self.names.bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "LambdaFunctionArn": self.names.function_arn("intake_s3"),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": "requests/"},
                                    {"Name": "suffix", "Value": ".json"},
                                ]
                            }
                        },
                    },
                    # Batch manifests (template: IntakeS3Function ManifestCreated).
                    {
                        "LambdaFunctionArn": self.names.function_arn("intake_s3"),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {
                                "FilterRules": [
                                    {"Name": "prefix", "Value": "requests/"},
                                    {"Name": "suffix", "Value": ".jsonl"},
                                ]
                            }
                        },
                    },
                ]
            },
        )

        def started_poller(queue: tuple[str, str], function: str, **options: Any) -> SqsPoller:
            poller = SqsPoller(
                clients["sqs"], invoker, *queue, self.names.function(function), faults=self._faults, **options
            )
            poller.start()
            return poller

        visibility = self.config.queue_visibility_seconds
        self._poller = started_poller(
            (queue_url, queue_arn),
            "submit",
            max_concurrency=self.config.submit_max_concurrency,
            visibility_seconds=visibility,
        )
        self._callback_poller = started_poller(
            (callback_queue_url, callback_queue_arn), "callback_nudge", visibility_seconds=visibility
        )
        # No visibility kept up here: the function sets a failed delivery's own visibility (its retry delay),
        # which the poller's extensions would overwrite.
        self._webhook_poller = started_poller((webhook_queue_url, webhook_queue_arn), "webhook_deliver")
        self._batch_poller = started_poller(
            (batch_queue_url, batch_queue_arn), "batch", visibility_seconds=BATCH_VISIBILITY_SECONDS
        )
        # The outbox: the jobs table's stream to the publish function, with the template's event source.
        self._stream_poller = StreamPoller(
            session.client("dynamodbstreams"),
            clients["dynamodb"].describe_table(TableName=self.names.table)["Table"]["LatestStreamArn"],
            lambda_invoker(invoker, self.names.function("publish")),
            self.names.function_arn("publish"),
            StreamSource.outbox(),
            session.client("sqs"),
            outbox_dlq_url,
        )
        self._stream_poller.start()
        self._watcher = ExecutionWatcher(
            session.client("stepfunctions"),
            session.client("events"),
            self.names.state_machine_arn,
            interval=self.config.execution_watch_seconds,
        )
        executions.LISTENER = self._watcher.notify
        self._watcher.start()
        self._front_door = FrontDoor(
            invoker,
            self.names.function("api"),
            api_port,
            api_name=self.names.api,
            identities=SigV4Identities(endpoint, self.names.region),
            authorizer=LocalAuthorizer(
                invoker,
                self.names.function("authorizer"),
                f"arn:aws:execute-api:{self.names.region}:{self.names.account}:local/{STAGE}",
                cache_seconds=self.config.key_authorizer_cache_seconds,
            ),
            faults=self._faults,
            public_routes={CALLBACK_PATH: self.names.function("openrouter_callback")},
            throttle=TokenBucket(*self.config.api_throttle) if self.config.api_throttle else None,
        )
        self._front_door.start()
        if self.config.metrics_file is not None:
            queues = {
                self.names.queue: queue_url,
                self.names.dead_letter_queue: dlq_url,
                self.names.intake_dead_letter_queue: intake_dlq_url,
                self.names.outbox_dead_letter_queue: outbox_dlq_url,
                self.names.callback_dead_letter_queue: callback_dlq_url,
                self.names.webhook_dead_letter_queue: webhook_dlq_url,
            }
            self._queue_sampler = metrics.QueueSampler(
                session.client("sqs"), queues, interval=self.config.queue_sample_seconds
            )
            self._queue_sampler.start()
        self.info = {
            "api_url": self._front_door.url,
            "aws_endpoint_url": endpoint,
            "region": self.names.region,
            "bucket": self.names.bucket,
            "event_bus": self.names.event_bus,
            "jobs_table": self.names.table,
            "keys_table": self.names.keys_table,
            "budgets_table": self.names.budgets_table,
            "control_table": self.names.control_table,
            "batches_table": self.names.batches_table,
            "batch_queue_url": batch_queue_url,
            "batch_dead_letter_queue_url": batch_dlq_url,
            "queue_url": queue_url,
            "dead_letter_queue_url": dlq_url,
            "intake_dead_letter_queue_url": intake_dlq_url,
            "outbox_dead_letter_queue_url": outbox_dlq_url,
            "callback_queue_url": callback_queue_url,
            "callback_dead_letter_queue_url": callback_dlq_url,
            "callbacks": self.callbacks,
            "webhook_queue_url": webhook_queue_url,
            "webhook_dead_letter_queue_url": webhook_dlq_url,
            "webhook_signing_table": self.names.webhook_signing_table,
            "webhook_signing_key_secret": signing_key_secret,
            "webhooks_allow_private": self.config.webhooks_allow_private,
            "results_queue_url": results_url,
            "state_machine_arn": self.names.state_machine_arn,
            "openrouter_base_url": base_url,
            "simulator": self.simulator is not None,
        }
        if self.simulator is not None:
            self.info["simulator_content_url"] = self.simulator.content_base_url
        if self.config.metrics_file is not None:
            self.info["metrics_file"] = str(self.config.metrics_file)
        if self._faults is not None:
            self.info["aws_fault_rate"] = self._faults.rate
            self.info["aws_door_fault_rate"] = self._faults.door_rate
            self.info["aws_faults_file"] = str(self._faults.record_file)
        return self.info

    def stop(self) -> None:
        """Idempotent; also undoes a partial start."""
        global _running
        # Every loop is told first, so that their current ticks end together rather than one after another.
        loops = (self._poller, self._callback_poller, self._webhook_poller, self._stream_poller, self._watcher)
        for loop in (*loops, self._batch_poller, self._queue_sampler):
            if loop is not None:
                loop.request_stop()
        if self._front_door:
            self._front_door.stop()
            self._front_door = None
        if self._poller:
            self._poller.stop()
            self._poller = None
        if self._callback_poller:
            self._callback_poller.stop()
            self._callback_poller = None
        if self._webhook_poller:
            self._webhook_poller.stop()
            self._webhook_poller = None
        if self._batch_poller:
            self._batch_poller.stop()
            self._batch_poller = None
        if self._stream_poller:
            self._stream_poller.stop()
            self._stream_poller = None
        if self._watcher:
            if self._watcher.notify == executions.LISTENER:
                executions.LISTENER = None
            self._watcher.stop()
            self._watcher = None
        if self._queue_sampler:
            self._queue_sampler.stop()
            self._queue_sampler = None
        if patches.ASYNC_INVOKER is self._async_invoker:
            patches.ASYNC_INVOKER = None
        if self._faults is not None:
            if patches.AWS_FAULTS is self._faults:
                patches.AWS_FAULTS = None
            self._faults = None
        if self._async_invoker:
            self._async_invoker.stop()
            self._async_invoker = None
        if self._server:
            in_process.stop()
            self._server.stop()
            self._server = None
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.config.metrics_file is not None:
            metrics.close_file()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}
        self._reset_core_caches()
        with _running_lock:
            if _running is self:
                _running = None

    # --- pieces -----------------------------------------------------------------------------------

    def _openrouter(self) -> tuple[str, str]:
        if self.config.openrouter_base_url or self.config.openrouter_api_key:
            from videogen.settings import openrouter_base

            try:  # refused at start-up, not at the first job
                base = openrouter_base(self.config.openrouter_base_url or "https://openrouter.ai")
            except ValueError as exc:
                raise SystemExit(str(exc)) from None
            if not self.config.openrouter_api_key:
                raise SystemExit("OPENROUTER_BASE_URL is set but OPENROUTER_API_KEY is not")
            return base, self.config.openrouter_api_key
        from videogen_local.sim import OpenRouterSimulator, SimulatorConfig

        self.simulator = OpenRouterSimulator(
            SimulatorConfig(
                api_key=self.config.simulator_api_key,
                polls_to_complete=self.config.simulator_polls_to_complete,
                max_render_height=self.config.simulator_max_render_height,
                fault_rate=self.config.simulator_fault_rate,
                fault_seed=self.config.simulator_fault_seed,
                webhook_secret=self.config.webhook_secret,
                seconds_to_complete=self.config.simulator_seconds_to_complete,
            )
        )
        self.simulator.start()
        return self.simulator.base_url, self.config.simulator_api_key

    def _callbacks(self, api_port: int) -> tuple[str | None, str]:
        """(the callback URL for submit, or None; what the ready line says about callbacks)."""
        if not self.config.webhook_secret:
            return None, "off (no OPENROUTER_WEBHOOK_SECRET): polling only"
        if self.simulator is None:
            log.warning(
                "OPENROUTER_WEBHOOK_SECRET is set, but OpenRouter cannot call back a local URL: no callback_url is "
                "sent and jobs are found finished by polling (every %s s)",
                self.config.poll_interval,
            )
            return None, "off (the real OpenRouter cannot reach a loopback URL): polling only"
        return f"http://127.0.0.1:{api_port}/{STAGE}{CALLBACK_PATH}", "on (simulator): callbacks, polling as fallback"

    def _create_callback_queues(self, sqs: Any) -> tuple[str, str, str]:
        """The callback queue (template: CallbackQueue) and its DLQ."""
        return self._queue_with_dlq(sqs, self.names.callback_queue, self.names.callback_dead_letter_queue)

    def _queue_with_dlq(
        self,
        sqs: Any,
        name: str,
        dlq_name: str,
        max_receive_count: int = MAX_RECEIVE_COUNT,
        visibility: int | None = None,
    ) -> tuple[str, str, str]:
        """A queue that moves a message to its DLQ after ``max_receive_count`` receives (visibility timeout:
        ``visibility``, else the configured one): (url, arn, DLQ url)."""
        dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
        queue_url = sqs.create_queue(
            QueueName=name,
            Attributes={
                "VisibilityTimeout": str(visibility or self.config.queue_visibility_seconds),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return queue_url, arn, dlq_url

    def _start_faults(self) -> AwsFaults | None:
        """AWS-side faults on the handlers' clients and in the SQS poller (chaos runs), if configured."""
        if not self.config.aws_fault_rate:
            return None
        from videogen.aws import client

        record_file = self.config.aws_fault_file
        if record_file is None:
            handle, name = tempfile.mkstemp(prefix="videogen-aws-faults-", suffix=".json")
            os.close(handle)
            record_file = Path(name)
        faults = AwsFaults(
            self.config.aws_fault_rate,
            self.config.aws_fault_seed,
            functions={self.names.function(folder): folder for folder in CRASHING_FUNCTIONS},
            record_file=record_file,
            door_rate=self.config.aws_door_fault_rate,
        )
        # The handlers' clients are cached per process (videogen.aws.client): hook the very ones they use.
        faults.install({service: client(service) for service in HANDLER_SERVICES})
        patches.AWS_FAULTS = faults
        log.warning("AWS faults on: rate %s (doors %s), counts in %s", faults.rate, faults.door_rate, record_file)
        return faults

    def _set_env(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value
        for name in (
            "OPENROUTER_API_KEY",
            "OPENROUTER_API_KEY_SECRET",
            "QUEUE_URL",
            "OPENROUTER_WEBHOOK_SECRET",
            "OPENROUTER_WEBHOOK_SECRET_ID",
            "OPENROUTER_CALLBACK_URL",
            "CALLBACK_QUEUE_URL",
            "WEBHOOK_SIGNING_KEY_SECRET",
            "WEBHOOK_QUEUE_URL",
            "BATCH_QUEUE_URL",
        ):
            self._saved_env.setdefault(name, os.environ.get(name))

    @staticmethod
    def _reset_core_caches() -> None:
        from videogen.aws import reset_clients
        from videogen.services import reset_services

        reset_clients()
        reset_services()

    def _create_queues(self, sqs: Any) -> tuple[str, str, str, str]:
        """The submit queue (with its DLQ) and the intake functions' on-failure queue."""
        intake_dlq_url = sqs.create_queue(QueueName=self.names.intake_dead_letter_queue)["QueueUrl"]
        queue_url, arn, dlq_url = self._queue_with_dlq(sqs, self.names.queue, self.names.dead_letter_queue)
        return queue_url, arn, dlq_url, intake_dlq_url

    def _create_table(self, dynamodb: Any) -> None:
        create_jobs_table(dynamodb, self.names.table)
        create_keys_table(dynamodb, self.names.keys_table)
        create_budgets_table(dynamodb, self.names.budgets_table)
        create_control_table(dynamodb, self.names.control_table)
        create_webhook_signing_table(dynamodb, self.names.webhook_signing_table)
        create_batches_table(dynamodb, self.names.batches_table)

    def _create_functions(self, iam: Any, lambda_client: Any) -> None:
        role = iam.create_role(
            RoleName=f"{self.config.stack_name}-functions",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            # moto keeps the code but never runs it: the handlers run in-process (see patches.py).
            zipped.writestr("app.py", "def lambda_handler(event, context):\n    raise RuntimeError('local only')\n")
        modules = load_all(repository_root())
        for folder, module in modules.items():
            name = self.names.function(folder)
            patches.HANDLERS[name] = module.lambda_handler
            if folder in ONE_EVENT_AT_A_TIME:
                patches.ONE_AT_A_TIME.setdefault(name, threading.Lock())
            if folder == "submit" and self.config.submit_max_concurrency > 1:
                # As the submit queue's ScalingConfig.MaximumConcurrency: that many environments at most.
                copies = [module] + [
                    load_function(folder, repository_root(), environment=n)
                    for n in range(1, self.config.submit_max_concurrency)
                ]
                patches.ENVIRONMENTS[name] = patches.Environments([copy.lambda_handler for copy in copies])
            else:
                patches.ENVIRONMENTS.pop(name, None)
            lambda_client.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler="app.lambda_handler",
                Code={"ZipFile": archive.getvalue()},
                Timeout=TIMEOUT_SECONDS.get(folder, 60),
                MemorySize=MEMORY_MB.get(folder, 256),
                Architectures=["arm64"],
            )

    def _create_state_machine(self, sfn: Any) -> None:
        definition = (repository_root() / "statemachine" / "video_job.asl.json").read_text()
        for placeholder, folder in (
            ("PollFunctionArn", "poll"),
            ("DownloadFunctionArn", "download"),
            ("FailFunctionArn", "fail"),
        ):
            definition = definition.replace("${" + placeholder + "}", self.names.function_arn(folder))
        sfn.create_state_machine(
            name=self.names.state_machine,
            definition=definition,
            roleArn=f"arn:aws:iam::{self.names.account}:role/{self.config.stack_name}-state-machine",
            type="STANDARD",
        )

    def _create_bus(self, events: Any, sqs: Any, webhook_queue_arn: str) -> str:
        bus = self.names.event_bus
        events.create_event_bus(Name=bus)
        # Results of jobs with a webhook_url, to the webhook queue: the rule's pattern as the template has it.
        from videogen_local.cfn import load_template

        rule = load_template(repository_root() / "template.yaml")["Resources"]["WebhookResultsRule"]["Properties"]
        events.put_rule(Name="webhook-results", EventBusName=bus, EventPattern=json.dumps(rule["EventPattern"]))
        events.put_targets(
            Rule="webhook-results", EventBusName=bus, Targets=[{"Id": "webhook-queue", "Arn": webhook_queue_arn}]
        )
        events.put_rule(
            Name="video-requested", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["VideoRequested"]})
        )
        events.put_targets(
            Rule="video-requested",
            EventBusName=bus,
            Targets=[{"Id": "intake", "Arn": self.names.function_arn("intake_event")}],
        )
        results_url = sqs.create_queue(QueueName=self.names.results_queue)["QueueUrl"]
        results_arn = sqs.get_queue_attributes(QueueUrl=results_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(Name="results", EventBusName=bus, EventPattern=json.dumps({"source": ["videogen"]}))
        events.put_targets(Rule="results", EventBusName=bus, Targets=[{"Id": "results", "Arn": results_arn}])
        # The fail function's safety net (template: FailFunction ExecutionEnded), on the default bus where
        # Step Functions puts its status-change events (emitted here by the ExecutionWatcher).
        safety_net = {
            "source": ["aws.states"],
            "detail-type": ["Step Functions Execution Status Change"],
            "detail": {"status": list(ENDED), "stateMachineArn": [self.names.state_machine_arn]},
        }
        events.put_rule(Name=f"{self.config.stack_name}-execution-ended", EventPattern=json.dumps(safety_net))
        events.put_targets(
            Rule=f"{self.config.stack_name}-execution-ended",
            Targets=[{"Id": "fail", "Arn": self.names.function_arn("fail")}],
        )
        return str(results_url)


def create_jobs_table(dynamodb: Any, name: str) -> None:
    """The jobs table as template.yaml defines it (key ``id``, indexes ``by_caller`` and the sparse
    ``by_openrouter_job_id``); tests use it too."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "caller", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
            {"AttributeName": "openrouter_job_id", "AttributeType": "S"},
            {"AttributeName": "batch_id", "AttributeType": "S"},
            {"AttributeName": "batch_line", "AttributeType": "N"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_openrouter_job_id",
                "KeySchema": [{"AttributeName": "openrouter_job_id", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "by_caller",
                "KeySchema": [
                    {"AttributeName": "caller", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by_batch",
                "KeySchema": [
                    {"AttributeName": "batch_id", "KeyType": "HASH"},
                    {"AttributeName": "batch_line", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def create_batches_table(dynamodb: Any, name: str) -> None:
    """The batches table as template.yaml defines it (key ``batch_id`` + ``item``); tests use it too."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "batch_id", "KeyType": "HASH"}, {"AttributeName": "item", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "batch_id", "AttributeType": "S"},
            {"AttributeName": "item", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def create_keys_table(dynamodb: Any, name: str) -> None:
    """The tenant API keys table as template.yaml defines it (key ``key_id``); tests use it too."""
    _create_string_keyed_table(dynamodb, name, "key_id")


def create_webhook_signing_table(dynamodb: Any, name: str) -> None:
    """The webhook signing table as template.yaml defines it (key ``owner``); tests use it too."""
    _create_string_keyed_table(dynamodb, name, "owner")


def create_control_table(dynamodb: Any, name: str) -> None:
    """The control table as template.yaml defines it (key ``name``: the credit breaker, the shared submission
    rate); tests use it too."""
    _create_string_keyed_table(dynamodb, name, "name")


def create_budgets_table(dynamodb: Any, name: str) -> None:
    """The budgets table as template.yaml defines it (key ``owner`` + ``period``); tests use it too."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "owner", "KeyType": "HASH"}, {"AttributeName": "period", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "period", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def _create_string_keyed_table(dynamodb: Any, name: str, key: str) -> None:
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
