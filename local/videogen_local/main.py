"""The ``videogen`` command: local mode, the demo, and a CLI for callers of the API."""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

DEFAULT_METRICS_FILE = "out/metrics.jsonl"
# How long `local serve` may take to stop after SIGINT/SIGTERM before it prints its threads and exits 1.
STOP_DEADLINE_SECONDS = 30
SIGNAL_CHECK_SECONDS = 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videogen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    local = commands.add_parser("local", help="run the pipeline on this machine (moto, no AWS account)")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    serve = local_commands.add_parser("serve", help="serve the local stack until interrupted")
    serve.add_argument("--port", type=int, default=8787, help="API port (0: any free port)")
    serve.add_argument("--poll-interval", type=int, default=1, help="seconds between polls (deployed: 30)")
    serve.add_argument("--max-polls", type=int, default=60)
    serve.add_argument("--stack-name", default="videogen-local")
    serve.add_argument(
        "--no-preflight",
        action="store_true",
        help="accept https references without fetching them first (env VIDEOGEN_PREFLIGHT=off)",
    )
    serve.add_argument(
        "--allow-private-references",
        action="store_true",
        help="let the preflight fetch loopback, private hosts and plain http (tests, simulators; never deployed)",
    )
    serve.add_argument(
        "--allow-private-webhooks",
        action="store_true",
        help="deliver webhooks to loopback, private hosts and plain http receivers (tests; never deployed)",
    )
    serve.add_argument(
        "--metrics-file",
        type=Path,
        default=Path(DEFAULT_METRICS_FILE),
        help=f"where the metrics are recorded for `videogen dashboard` (default: {DEFAULT_METRICS_FILE})",
    )

    redrive = commands.add_parser("redrive", help="move dead-lettered submit messages back to the submit queue")
    redrive.add_argument("--dlq-url", required=True, help="the DeadLetterQueueUrl stack output")
    redrive.add_argument("--queue-url", required=True, help="the SubmitQueueUrl stack output")
    redrive.add_argument("--endpoint-url", help="AWS endpoint (local mode: aws_endpoint_url of local serve)")
    redrive.add_argument("--limit", type=int, help="move at most this many messages")

    republish = commands.add_parser(
        "republish", help="send the result event of every job that ended without one (after the outbox DLQ alarm)"
    )
    republish.add_argument("--table", required=True, help="the JobsTableName stack output")
    republish.add_argument("--event-bus", required=True, help="the EventBusName stack output")
    republish.add_argument(
        "--outbox-dlq-url", help="the OutboxDeadLetterQueueUrl stack output: emptied once every job is announced"
    )
    republish.add_argument("--endpoint-url", help="AWS endpoint (local mode: aws_endpoint_url of local serve)")
    republish.add_argument(
        "--older-than",
        type=float,
        default=5.0,
        help="minutes: only jobs that ended at least this long ago; younger ones are still the stream's (%(default)s)",
    )

    migrate = commands.add_parser(
        "migrate-owners", help="move jobs recorded under an IAM session to their role (once, after upgrading)"
    )
    migrate.add_argument("--table", required=True, help="the JobsTableName stack output")
    migrate.add_argument("--endpoint-url", help="AWS endpoint (local mode: aws_endpoint_url of local serve)")

    from videogen_local import batch_cli, budgets_cli, chaos, demo, keys_cli, webhooks_cli

    batch_cli.add_arguments(commands.add_parser("batch", help="batches of requests through POST /batches"))

    budgets_cli.add_arguments(commands.add_parser("budgets", help="monthly and daily USD budgets per owner"))

    keys_cli.add_arguments(commands.add_parser("keys", help="tenant API keys for the OpenRouter-compatible routes"))
    webhooks_cli.add_arguments(commands.add_parser("webhooks", help="an owner's outbound webhook signing secret"))

    chaos.add_arguments(commands.add_parser("chaos", help="many jobs through local serve with injected faults"))

    demo.add_arguments(commands.add_parser("demo", help="the guide's backpack example, end to end, saved as an MP4"))

    dashboard = commands.add_parser(
        "dashboard", help="render the CloudWatch dashboard of template.yaml from local metrics (HTML and PNG)"
    )
    dashboard.add_argument(
        "--metrics", type=Path, default=Path(DEFAULT_METRICS_FILE), help="a run's metrics (default: %(default)s)"
    )
    dashboard.add_argument("--stack-name", default="videogen-local", help="as given to local serve (%(default)s)")
    dashboard.add_argument("--html", type=Path, default=Path("out/dashboard.html"), help="(default: %(default)s)")
    dashboard.add_argument(
        "--png", type=Path, default=Path("out/dashboard.png"), help="screenshot, needs Chromium (default: %(default)s)"
    )
    dashboard.add_argument("--no-png", action="store_true", help="write the HTML only")
    dashboard.add_argument("--period", type=int, help="seconds per data point (default: fits the run's time span)")
    dashboard.add_argument("--logs", type=Path, help="local serve's stderr, for the Logs Insights widget")
    dashboard.add_argument("--template", type=Path, help="the SAM template (default: the checkout's template.yaml)")

    def with_api(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--api", default=os.environ.get("VIDEOGEN_API_URL"), help="API URL (env VIDEOGEN_API_URL)")
        sub.add_argument("--region", help="AWS region of a deployed API (default: from its URL)")
        return sub

    submit = with_api("submit", "submit a video request")
    submit.add_argument("--json", type=Path, help="a request JSON file (fields below override it)")
    submit.add_argument("--prompt")
    submit.add_argument("--model")
    submit.add_argument("--duration", type=int)
    submit.add_argument("--resolution")
    submit.add_argument("--aspect-ratio")
    submit.add_argument("--size")
    submit.add_argument("--generate-audio", action="store_true", default=None)
    submit.add_argument("--seed", type=int)
    submit.add_argument("--reference", action="append", default=[], help="reference image URL (repeatable)")
    submit.add_argument("--frame", action="append", default=[], help="URL:first_frame or URL:last_frame")
    status = with_api("status", "show a job")
    status.add_argument("id")
    wait = with_api("wait", "wait for a job to end, with a live progress line")
    wait.add_argument("id")
    wait.add_argument("--timeout", type=float, default=3600)
    wait.add_argument("--interval", type=float, default=5)
    download = with_api("download", "save a completed job's MP4")
    download.add_argument("id")
    download.add_argument("-o", "--output", type=Path)
    with_api("models", "list OpenRouter's video models")

    args = parser.parse_args(argv)
    if args.command == "local":
        return serve_local(args)
    if args.command == "demo":
        return demo.run_demo(args)
    if args.command == "chaos":
        return chaos.run(args)
    if args.command == "dashboard":
        from videogen_local.dashboard import run as render_dashboard

        return render_dashboard(args)
    if args.command == "redrive":
        import boto3

        from videogen_local.redrive import redrive as move

        sqs = boto3.client("sqs", endpoint_url=args.endpoint_url)
        print(json.dumps({"moved": move(sqs, args.dlq_url, args.queue_url, args.limit)}))
        return 0
    if args.command == "keys":
        return keys_cli.run(args)
    if args.command == "budgets":
        return budgets_cli.run(args)
    if args.command == "webhooks":
        return webhooks_cli.run(args)
    if args.command == "batch":
        return batch_cli.run(args)
    if args.command == "migrate-owners":
        from videogen_local.migrate import migrate_owners

        print(json.dumps(migrate_owners(args.table, endpoint_url=args.endpoint_url)))
        return 0
    if args.command == "republish":
        from videogen_local.redrive import republish_unannounced

        report = republish_unannounced(
            args.table,
            args.event_bus,
            args.older_than,
            endpoint_url=args.endpoint_url,
            outbox_dlq_url=args.outbox_dlq_url,
        )
        print(json.dumps(report))
        return 1 if report["failed"] else 0
    return call_api(args)


def serve_local(args: argparse.Namespace) -> int:
    # stdout carries exactly one line (the JSON below): everything the handlers print goes to stderr.
    # The handlers' EMF lines also go to the metrics file, for `videogen dashboard`.
    from videogen_local.localmode import metrics
    from videogen_local.localmode.output import LineWriter

    ready_line = sys.stdout
    sys.stdout = LineWriter(sys.stderr, hook=metrics.copy_emf)  # type: ignore[assignment]
    from videogen_local.localmode.stack import LocalStack, LocalStackConfig

    config = LocalStackConfig.from_env(
        poll_interval=args.poll_interval,
        max_polls=args.max_polls,
        api_port=args.port,
        stack_name=args.stack_name,
        metrics_file=args.metrics_file.resolve(),
        preflight=not args.no_preflight and os.environ.get("VIDEOGEN_PREFLIGHT", "on").lower() not in ("off", "0"),
        preflight_allow_private=args.allow_private_references
        or os.environ.get("VIDEOGEN_PREFLIGHT_ALLOW_PRIVATE", "") in ("1", "true", "on"),
        webhooks_allow_private=args.allow_private_webhooks
        or os.environ.get("VIDEOGEN_WEBHOOKS_ALLOW_PRIVATE", "") in ("1", "true", "on"),
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # `kill -USR1` prints every thread's stack to stderr: what a stuck local stack is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    with LocalStack(config) as stack:
        ready_line.write(json.dumps(stack.info) + "\n")
        ready_line.flush()
        # A process-directed signal may land on any of the stack's threads; CPython then only runs the handler
        # once the main thread executes bytecode again, which an untimed wait never does. Waking up now and
        # then lets the handler run.
        while not stop.wait(SIGNAL_CHECK_SECONDS):
            pass
        print("stopping the local stack", file=sys.stderr)
        # Every part stops within seconds; one that hangs gets its stacks printed and the process ends
        # (exit status 1) rather than leaving a caller waiting on it.
        faulthandler.dump_traceback_later(STOP_DEADLINE_SECONDS, exit=True)
    faulthandler.cancel_dump_traceback_later()
    return 0


def call_api(args: argparse.Namespace) -> int:
    from videogen_local.caller import VideogenApi

    if not args.api:
        raise SystemExit("pass --api URL (or set VIDEOGEN_API_URL), e.g. the ApiUrl stack output")
    api = VideogenApi(args.api, args.region)
    result: Any
    if args.command == "submit":
        result = api.submit(build_request(args))
    elif args.command == "status":
        result = api.status(args.id)
    elif args.command == "wait":
        result = api.wait(args.id, args.timeout, args.interval)
        print(json.dumps(result, indent=2))
        return 0 if result["status"] == "completed" else 1
    elif args.command == "download":
        output = args.output or Path(f"{args.id}.mp4")
        result = {"id": args.id, "output_path": str(output), "bytes": api.download(args.id, output)}
    else:
        result = api.call("GET", "/models")
    print(json.dumps(result, indent=2))
    return 0


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(args.json.read_text()) if args.json else {}
    for field in ("prompt", "model", "duration", "resolution", "aspect_ratio", "size", "generate_audio", "seed"):
        value = getattr(args, field)
        if value is not None:
            request[field] = value
    if args.reference:
        request["input_references"] = [{"type": "image_url", "image_url": {"url": url}} for url in args.reference]
    if args.frame:
        frames = []
        for spec in args.frame:
            url, _, frame_type = spec.rpartition(":")
            if frame_type not in ("first_frame", "last_frame") or not url:
                raise SystemExit(f"--frame wants URL:first_frame or URL:last_frame, got {spec!r}")
            frames.append({"type": "image_url", "image_url": {"url": url}, "frame_type": frame_type})
        request["frame_images"] = frames
    return request


if __name__ == "__main__":
    sys.exit(main())
