"""An OpenRouter video API simulator: real HTTP on loopback, following the documented API.

* ``POST /api/v1/videos`` → 202 with a *relative* ``polling_url``; 400/404 for values outside the
  model's capabilities or unknown models; 401 without the key; errors in the ``{"error": {...}}`` envelope.
* ``GET /api/v1/videos/{id}`` → ``pending`` → ``in_progress`` → ``completed`` over a configurable
  number of polls, then ``unsigned_urls`` on a *second host* (127.0.0.2) and ``usage.cost``.
* ``GET /api/v1/videos/{id}/content?index=0`` (key required) and the content host serve a real MP4
  rendered from the reference image. The content host must never receive the key: every request is
  recorded so tests can check.
* ``callback_url`` in the submit body: on the job's terminal status a signed callback is POSTed there, as
  OpenRouter does (``{"type": "video.generation.<status>", "data": {...}}``, ``X-OpenRouter-Signature``,
  ``X-OpenRouter-Idempotency-Key``), signed with ``webhook_secret``; with faults on it may come twice,
  late, early (before the job is terminal), wrongly signed or not at all.
* ``seconds_to_complete``: jobs reach their outcome that long after submission, whoever polls (as real
  generation does); otherwise after ``polls_to_complete`` polls.
* Scripted outcomes ride in the prompt so they work across processes: ``[sim:outcome=failed]``
  (or cancelled / expired / never), ``[sim:polls=N]``, ``[sim:seconds=N]`` (with ``seconds_to_complete``) and
  ``[sim:reject=402]`` (refuse the submission), ``[sim:urls=signed]`` / ``[sim:urls=expired]`` (a completed job
  also has signed, keyless ``urls`` with ``expires_at`` an hour ahead, or already past).
* The account's credits (``set_credits``, or ``POST /_sim/credits`` from another process): while they are
  out every submission is refused as OpenRouter refuses them: ``402`` insufficient credits, ``402`` with
  ``limit_source: openrouter_in_flight_budget`` and ``Retry-After`` ("in_flight"), or ``403`` over the
  key's limit ("key_limit"). Refusals are counted in ``stats()["credit_refusals"]``.
* Pushback (``set_pushback``, or ``POST /_sim/pushback``): the next ``next`` submissions, and a share ``rate`` of
  all of them, are answered ``429`` with ``Retry-After: 1`` (none creates a job); counted in
  ``stats()["pushbacks"]``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from videogen_local.sim.render import frame_size, render_reference_video

SEEDANCE: dict[str, Any] = {
    "id": "bytedance/seedance-2.0-fast",
    "canonical_slug": "bytedance/seedance-2.0-fast",
    "name": "ByteDance: Seedance 2.0 Fast",
    "created": 1775000000,
    "description": "Fast reference-to-video and image-to-video generation.",
    "supported_durations": list(range(4, 16)),
    "supported_resolutions": ["480p", "720p"],
    "supported_aspect_ratios": ["1:1", "3:4", "9:16", "4:3", "16:9", "21:9", "9:21"],
    "supported_sizes": None,
    "supported_frame_images": ["first_frame", "last_frame"],
    "generate_audio": True,
    "seed": True,
    "pricing_skus": {"video_tokens": "0.0000014"},
    "allowed_passthrough_parameters": [],
    "upscale_factor": None,
    "creativity": None,
}
MODELS: list[dict[str, Any]] = [
    SEEDANCE,
    {
        **SEEDANCE,
        "id": "google/veo-3.1-fast",
        "canonical_slug": "google/veo-3.1-fast",
        "name": "Google: Veo 3.1 Fast",
        "supported_durations": [4, 6, 8],
        "allowed_passthrough_parameters": ["personGeneration", "negativePrompt"],
        "supported_resolutions": ["720p", "1080p", "4K"],
        "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_sizes": ["1280x720", "1080x1920", "1920x1080", "720x1280"],
    },
    {
        **{key: None for key in SEEDANCE if key.startswith("supported_")},
        "id": "test/nulls-model",
        "canonical_slug": "test/nulls-model",
        "name": "Capabilities unknown",
        "created": 1775000000,
        "generate_audio": None,
        "seed": None,
        "pricing_skus": None,
        "allowed_passthrough_parameters": [],
        "upscale_factor": None,
        "creativity": None,
    },
]
FAILURE_MESSAGES = {
    "failed": "Provider rejected the request: content moderation flagged the prompt",
    "cancelled": "The generation was cancelled by the provider",
    "expired": "The generated video expired before it was retrieved",
}
# What can go wrong where. Submit faults are "known not accepted" (429, 5xx with an error body) or
# "outcome unknown" (slow, dropped after the job was created); the pipeline must handle each correctly.
FAULTS: dict[str, tuple[str, ...]] = {
    "submit": ("429", "500", "503", "slow", "drop"),
    "poll": ("429", "500", "502", "503", "slow", "drop"),
    "content": ("500", "503", "slow", "drop", "truncate"),
    "outcome": ("failed", "cancelled", "expired"),
    # A callback: sent twice, late, before the job is terminal (then again), signed wrongly (and never
    # rightly), or never. Each leaves the poll loop to find the end, or makes it find it sooner.
    "callback": ("duplicate", "delay", "early", "bad_signature", "stale", "drop"),
}
MARKER = re.compile(r"\[sim:(outcome|polls|reject|seconds|urls)=([a-z0-9_.]+)\]")


@dataclass
class SimulatorConfig:
    api_key: str = "sk-sim-local-0000000000000000"
    polls_to_complete: int = 3
    render_fps: int = 24
    # Distinct renders kept (see OpenRouterSimulator._rendered): many jobs of one request shape cost one render.
    render_cache_size: int = 32
    max_render_height: int | None = None
    content_redirect: bool = False
    cost_per_second: float = 0.05
    host: str = "127.0.0.1"
    content_host: str = "127.0.0.2"
    port: int = 0
    # Fault injection: each request to an endpoint in fault_endpoints fails with this probability, with a
    # fault kind drawn from FAULTS[endpoint]; the same rate turns jobs into failed/cancelled/expired ones.
    fault_rate: float = 0.0
    fault_seed: int | None = None
    fault_endpoints: tuple[str, ...] = ("submit", "poll", "content", "outcome", "callback")
    slow_seconds: float = 3.0  # a "slow" fault answers after this long: past the client's time-out in chaos runs
    # The workspace's signing secret: callbacks are signed with it (unsigned without it, as OpenRouter does).
    webhook_secret: str | None = None
    seconds_to_complete: float | None = None
    callback_delay_seconds: float = 2.0  # a "delay" fault


@dataclass
class RecordedRequest:
    server: str  # "api" or "content"
    method: str
    host: str
    path: str
    headers: dict[str, str]
    time: float = field(default_factory=time.time)


@dataclass
class SimJob:
    id: str
    request: dict[str, Any]
    outcome: str = "completed"
    polls_to_complete: int = 3
    polls: int = 0
    status: str = "pending"
    error: str | None = None
    video: bytes | None = None
    sha256: str | None = None
    signature: str = field(default_factory=lambda: secrets.token_hex(8))
    # [sim:urls=...]: signed output URLs ("signed", "expired"), their bearer token, and downloads through them.
    signed_urls: str | None = None
    signed_token: str = field(default_factory=lambda: secrets.token_hex(16))
    signed_downloads: int = 0
    callback_fault: str | None = None  # drawn at submission: how this job's callback goes wrong, if it does
    finished_at: float | None = None  # when the job reached its terminal status (time.time())
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # what was POSTed to callback_url, and its answer
    # Serialises this job's render only: one slow reference host must not stall every other job.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class _Listener(ThreadingHTTPServer):
    # socketserver's default backlog is 5: under load (ten submit environments, polls and downloads at once) a
    # connection reset after the request was sent would look like a submission of unknown outcome.
    request_queue_size = 256


CREDIT_KINDS = ("402", "in_flight", "key_limit")


@dataclass
class Credits:
    """The account's standing: ``out`` refuses every submission, as ``kind`` says (CREDIT_KINDS)."""

    out: bool = False
    kind: str = "402"
    retry_after: int | None = None  # seconds, sent as Retry-After with the "in_flight" kind
    refusals: int = 0

    def refusal(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if not self.out:
            return None
        self.refusals += 1
        if self.kind == "key_limit":
            metadata = {"limit_source": "openrouter_key_limit", "scope": "key", "limit_usd": 10, "spend_usd": 10}
            return 403, _error_with(403, "Key limit exceeded", metadata), {}
        if self.kind == "in_flight":
            metadata = {"limit_source": "openrouter_in_flight_budget"}
            headers = {"Retry-After": str(self.retry_after if self.retry_after is not None else 1)}
            return 402, _error_with(402, "In-flight budget exhausted; retry shortly", metadata), headers
        return 402, _error_with(402, "Insufficient credits. Add more using https://openrouter.ai/credits", None), {}


class OpenRouterSimulator:
    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, SimJob] = {}
        self.submissions = 0
        self.credits = Credits()
        self.pushback_next = 0
        # Submissions being answered right now, and the most at once: what ScalingConfig.MaximumConcurrency bounds.
        self.submissions_in_flight = 0
        self.peak_submissions_in_flight = 0
        self.pushback_rate = 0.0
        self.pushbacks = 0
        self.faults: dict[str, int] = {}
        self._random = random.Random(self.config.fault_seed)
        self._lock = threading.Lock()
        self._renders: OrderedDict[tuple[str, int, int, int, int], tuple[bytes, str]] = OrderedDict()
        self.renders = 0  # videos encoded
        self.render_cache_hits = 0  # videos served from _renders instead
        self._api = _Listener((self.config.host, self.config.port), self._handler("api"))
        self._content = _Listener((self.config.content_host, 0), self._handler("content"))
        self.base_url = f"http://{self.config.host}:{self._api.server_address[1]}"
        self.content_base_url = f"http://{self.config.content_host}:{self._content.server_address[1]}"
        self._threads = [
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            for server in (self._api, self._content)
        ]
        for server in (self._api, self._content):
            server.daemon_threads = True

    def __enter__(self) -> OpenRouterSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        for server, thread in zip((self._api, self._content), self._threads, strict=True):
            if thread.is_alive():  # shutdown() would wait forever for a loop that never ran
                server.shutdown()
            server.server_close()

    # --- the account ----------------------------------------------------------------------------------

    def set_credits(self, out: bool, kind: str = "402", retry_after: int | None = None) -> None:
        """Run the account out of credits (``out``), or give them back."""
        if kind not in CREDIT_KINDS:
            raise ValueError(f"kind must be one of {CREDIT_KINDS}")
        with self._lock:
            self.credits.out, self.credits.kind, self.credits.retry_after = out, kind, retry_after

    def set_pushback(self, next_submissions: int = 0, rate: float = 0.0) -> None:
        """Answer the next ``next_submissions`` submissions, and a share ``rate`` of all, with 429."""
        if next_submissions < 0 or not 0.0 <= rate <= 1.0:
            raise ValueError("next must be >= 0 and rate within 0..1")
        with self._lock:
            self.pushback_next, self.pushback_rate = next_submissions, rate

    def _pushback(self) -> bool:
        with self._lock:
            if self.pushback_next > 0:
                self.pushback_next -= 1
            elif not (self.pushback_rate and self._random.random() < self.pushback_rate):
                return False
            self.pushbacks += 1
            return True

    @contextmanager
    def submission_in_flight(self) -> Iterator[None]:
        with self._lock:
            self.submissions_in_flight += 1
            self.peak_submissions_in_flight = max(self.peak_submissions_in_flight, self.submissions_in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.submissions_in_flight -= 1

    def _credit_refusal(self) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        with self._lock:
            return self.credits.refusal()

    # --- faults -------------------------------------------------------------------------------------

    def fault(self, endpoint: str) -> str | None:
        """Draw whether this request fails, and how (counted in ``faults`` as "endpoint:kind")."""
        if self.config.fault_rate <= 0 or endpoint not in self.config.fault_endpoints:
            return None
        with self._lock:
            if self._random.random() >= self.config.fault_rate:
                return None
            kind = self._random.choice(FAULTS[endpoint])
            key = f"{endpoint}:{kind}"
            self.faults[key] = self.faults.get(key, 0) + 1
            return kind

    def stats(self) -> dict[str, Any]:
        """Figures for chaos runs: submissions per prompt reveal any duplicate POST of one job."""
        with self._lock:
            prompts: dict[str, int] = {}
            for job in self.jobs.values():
                prompt = str(job.request.get("prompt"))
                prompts[prompt] = prompts.get(prompt, 0) + 1
            return {
                "submissions": self.submissions,
                "duplicate_submissions": sum(count - 1 for count in prompts.values() if count > 1),
                "duplicated_prompts": sorted(prompt for prompt, count in prompts.items() if count > 1),
                "faults": dict(sorted(self.faults.items())),
                "credits_out": self.credits.out,
                "credit_refusals": self.credits.refusals,
                "pushbacks": self.pushbacks,
                "peak_submissions_in_flight": self.peak_submissions_in_flight,
                "renders": self.renders,
                "render_cache_hits": self.render_cache_hits,
                "jobs": {
                    job.id: {
                        "prompt": job.request.get("prompt"),
                        "status": job.status,
                        "sha256": job.sha256,
                        "polls": job.polls,
                        "finished_at": job.finished_at,
                        "callbacks": list(job.callbacks),
                        "signed_downloads": job.signed_downloads,
                    }
                    for job in self.jobs.values()
                },
            }

    # --- API ----------------------------------------------------------------------------------------

    def _submit(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            return _error(400, "Invalid request parameters: body must be a JSON object")
        model_id, prompt = body.get("model"), body.get("prompt")
        has_image = bool(body.get("frame_images")) or any(
            (ref or {}).get("type", "image_url") == "image_url" for ref in body.get("input_references") or []
        )
        if not model_id or (not prompt and not has_image):
            # As documented: the prompt is optional for a request with image input alone.
            return _error(400, "Invalid request parameters: 'model' and 'prompt' (or image input) are required")
        model = next((m for m in MODELS if m["id"] == model_id), None)
        if model is None:
            return _error(404, f"Model not found: {model_id}")
        problem = _capability_problem(body, model)
        if problem:
            return _error(400, f"Invalid request parameters: {problem}")
        previous_id = body.get("previous_job_id")
        if previous_id is not None:
            with self._lock:
                previous = self.jobs.get(str(previous_id))
            if previous is None or previous.status != "completed":
                return _error(400, f"Invalid request parameters: previous_job_id {previous_id!r} is no completed job")
            if not has_image:  # a continuation renders from the video it continues (its reference)
                body = {
                    **body,
                    "input_references": previous.request.get("input_references") or [],
                    "frame_images": previous.request.get("frame_images") or [],
                }
        markers = dict(MARKER.findall(str(prompt)))
        if "reject" in markers:  # e.g. [sim:reject=402]: OpenRouter refuses the submission
            code = int(markers["reject"])
            return _error(
                code,
                {
                    402: "Insufficient credits. Add more using https://openrouter.ai/credits",
                    403: "Request blocked by guardrail",
                }.get(code, "Request rejected"),
            )
        outcome = markers.get("outcome") or self.fault("outcome") or "completed"
        job = SimJob(
            id=secrets.token_urlsafe(15)[:20],
            request=body,
            outcome=outcome,
            polls_to_complete=int(markers.get("polls", self.config.polls_to_complete)),
            signed_urls=markers.get("urls"),
        )
        with self._lock:
            self.jobs[job.id] = job
            self.submissions += 1
        if isinstance(body.get("callback_url"), str):
            job.callback_fault = self.fault("callback")
            if job.callback_fault == "early":  # claims completion while the job is still running
                early = threading.Thread(
                    target=self._deliver, args=(job, body["callback_url"], "early", "completed"), daemon=True
                )
                early.start()
        if self.config.seconds_to_complete is not None:
            # [sim:seconds=N]: this job's own generation time (measurements spread completions over the poll cycle).
            seconds = float(markers.get("seconds", self.config.seconds_to_complete))
            timer = threading.Timer(seconds, self._advance, (job,))
            timer.daemon = True
            timer.start()
        return 202, {
            "id": job.id,
            "polling_url": f"/api/v1/videos/{job.id}",
            "status": "pending",
            "generation_id": f"gen-{job.id}",
        }

    def _advance(self, job: SimJob) -> None:
        """The job's time is up (seconds_to_complete): it reaches its outcome without waiting for a poll."""
        ended = False
        with job.lock:
            if job.status in ("pending", "in_progress") and job.outcome != "never":
                self._conclude(job)
                ended = True
        if ended:
            self._callback(job)

    def _conclude(self, job: SimJob) -> None:
        if job.outcome in FAILURE_MESSAGES:
            job.status, job.error = job.outcome, FAILURE_MESSAGES[job.outcome]
        else:
            self._render(job)
        job.finished_at = time.time()

    def _poll(self, job: SimJob) -> dict[str, Any]:
        ended = False
        with job.lock:
            job.polls += 1
            if job.status in ("pending", "in_progress"):
                by_polls = self.config.seconds_to_complete is None
                if not by_polls or job.outcome == "never" or job.polls < job.polls_to_complete:
                    job.status = "pending" if job.polls == 1 else "in_progress"
                else:
                    self._conclude(job)
                    ended = True
        if ended:
            self._callback(job)
        body: dict[str, Any] = {
            "id": job.id,
            "generation_id": f"gen-{job.id}",
            "polling_url": f"/api/v1/videos/{job.id}",
            "status": job.status,
        }
        if job.status == "completed":
            body["unsigned_urls"] = [f"{self.content_base_url}/files/{job.id}.mp4?sig={job.signature}"]
            if job.signed_urls in ("signed", "expired"):
                ahead = 3600 if job.signed_urls == "signed" else -60
                expires = datetime.fromtimestamp(time.time() + ahead, UTC).isoformat(timespec="seconds")
                body["urls"] = [f"{self.content_base_url}/signed/{job.id}.mp4?token={job.signed_token}"]
                body["expires_at"] = expires.replace("+00:00", "Z")
            body["usage"] = {"cost": round(self._seconds(job) * self.config.cost_per_second, 4), "is_byok": False}
        if job.error:
            body["error"] = job.error
        return body

    def _seconds(self, job: SimJob) -> int:
        return int(job.request.get("duration") or 4)

    def _render(self, job: SimJob) -> None:
        """Render before the first 'completed' answer, so completed always means downloadable."""
        try:
            image = _fetch_image(_reference_url(job.request))
            width, height = frame_size(
                job.request.get("resolution"),
                job.request.get("aspect_ratio"),
                job.request.get("size"),
                self.config.max_render_height,
            )
            job.video, job.sha256 = self._rendered(image, width, height, self._seconds(job))
            job.status = "completed"
        except Exception as exc:
            job.status, job.error = "failed", f"could not fetch reference image: {type(exc).__name__}: {exc}"[:500]

    def _rendered(self, image: bytes, width: int, height: int, seconds: int) -> tuple[bytes, str]:
        """The video and its sha256 for these inputs, rendered once per distinct request: the render is a
        function of the image's bytes, the frame, the length and the rate alone (the encoder's output is
        deterministic), so a cached one is byte for byte what rendering again would give. Least recently
        used renders go first past ``render_cache_size``; 0 renders every time."""
        fps = self.config.render_fps
        key = (hashlib.sha256(image).hexdigest(), width, height, seconds, fps)
        with self._lock:
            cached = self._renders.get(key)
            if cached is not None:
                self._renders.move_to_end(key)
                self.render_cache_hits += 1
                return cached
        video = render_reference_video(image, width=width, height=height, seconds=seconds, fps=fps)
        rendered = video, hashlib.sha256(video).hexdigest()
        with self._lock:
            self.renders += 1
            if self.config.render_cache_size > 0:
                self._renders[key] = rendered
                while len(self._renders) > self.config.render_cache_size:
                    self._renders.popitem(last=False)
        return rendered

    # --- callbacks ----------------------------------------------------------------------------------

    def _callback(self, job: SimJob) -> None:
        """POST the terminal status to the job's callback_url (if it gave one), in the background: OpenRouter
        does not wait on its receivers. Faults at the fault rate (FAULTS["callback"])."""
        url = job.request.get("callback_url")
        if not isinstance(url, str) or not url:
            return
        kind = job.callback_fault
        if kind == "drop":
            return
        if kind == "early":  # the early one was sent at submission; the real one follows as usual
            kind = None
        thread = threading.Thread(target=self._deliver, args=(job, url, kind), daemon=True, name="sim-callback")
        thread.start()

    def _deliver(self, job: SimJob, url: str, kind: str | None, status: str | None = None) -> None:
        if kind == "delay":
            time.sleep(self.config.callback_delay_seconds)
        status = status or job.status
        data: dict[str, Any] = {"id": job.id, "generation_id": f"gen-{job.id}", "status": status}
        if status == "completed":
            data["unsigned_urls"] = [f"{self.content_base_url}/files/{job.id}.mp4?sig={job.signature}"]
        if job.error and status == job.status:
            data["error"] = job.error
        body = json.dumps({"type": f"video.generation.{status}", "data": data}).encode()
        headers = {"Content-Type": "application/json", "X-OpenRouter-Idempotency-Key": f"{job.id}-{status}"}
        secret = self.config.webhook_secret
        if secret:
            if kind == "bad_signature":
                secret = secret + "-wrong"
            # stale: rightly signed, ten minutes old (a replay of a captured call): the receiver must refuse it.
            stamp = int(time.time()) - (600 if kind == "stale" else 0)
            digest = hmac.new(secret.encode(), f"{stamp},".encode() + body, hashlib.sha256).hexdigest()
            headers["X-OpenRouter-Signature"] = f"t={stamp},v1={digest}"
        for _ in range(2 if kind == "duplicate" else 1):
            try:
                answer: int | str = httpx.post(url, content=body, headers=headers, timeout=10).status_code
            except httpx.HTTPError as exc:
                answer = type(exc).__name__
            with self._lock:
                job.callbacks.append({"status": status, "fault": kind, "answer": answer, "time": time.time()})

    # --- HTTP ---------------------------------------------------------------------------------------

    def _handler(self, server_name: str) -> type[BaseHTTPRequestHandler]:
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                simulator.requests.append(
                    RecordedRequest(server_name, self.command, headers.get("host", ""), self.path, headers)
                )
                length = int(headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    if server_name == "content":
                        self._content()
                    else:
                        self._api(headers, raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _inject(self, endpoint: str, on_time: Any = None) -> bool:
                """Apply a fault to this request if one is drawn; True if the request was answered by it.
                ``on_time`` runs before a slow or dropped answer (e.g. a submit that did create the job)."""
                kind = simulator.fault(endpoint)
                if kind is None or kind == "truncate":
                    self._truncate = kind == "truncate"
                    return False
                if kind in ("slow", "drop"):
                    if on_time is not None:
                        on_time()
                    if kind == "slow":
                        time.sleep(simulator.config.slow_seconds)
                    self.close_connection = True
                    return True
                status = int(kind)
                message = {
                    429: "Rate limit exceeded",
                    500: "Internal Server Error",
                    502: "Provider returned error",
                    503: "No available provider",
                }[status]
                status_body = _error(status, message)
                if status == 429:
                    self._json(*status_body, headers={"Retry-After": "1"})
                else:
                    self._json(*status_body)
                return True

            def _api(self, headers: dict[str, str], raw: bytes) -> None:
                url = urlsplit(self.path)
                parts = [p for p in url.path.split("/") if p]
                if url.path == "/_sim/stats":  # test hook: not part of OpenRouter's API
                    return self._json(200, simulator.stats())
                if url.path == "/_sim/credits":  # test hook: run the account out of credits, or refill it
                    if self.command == "POST":
                        try:
                            wanted = json.loads(raw or b"{}")
                            simulator.set_credits(
                                bool(wanted["out"]), str(wanted.get("kind", "402")), wanted.get("retry_after")
                            )
                        except (ValueError, KeyError, TypeError) as exc:
                            return self._json(*_error(400, f"credits: {exc}"))
                    credits = simulator.credits
                    return self._json(200, {"out": credits.out, "kind": credits.kind, "refusals": credits.refusals})
                if url.path == "/_sim/pushback":  # test hook: answer submissions with 429
                    if self.command == "POST":
                        try:
                            wanted = json.loads(raw or b"{}")
                            simulator.set_pushback(int(wanted.get("next", 0)), float(wanted.get("rate", 0.0)))
                        except (ValueError, TypeError) as exc:
                            return self._json(*_error(400, f"pushback: {exc}"))
                    return self._json(
                        200,
                        {
                            "next": simulator.pushback_next,
                            "rate": simulator.pushback_rate,
                            "pushbacks": simulator.pushbacks,
                        },
                    )
                if parts[:3] != ["api", "v1", "videos"]:
                    return self._json(*_error(404, "Resource not found"))
                if parts[3:] == ["models"] and self.command == "GET":
                    return self._json(200, {"data": MODELS})
                auth = headers.get("authorization")
                if not auth:
                    return self._json(*_error(401, "Missing Authentication header"))
                if auth != f"Bearer {simulator.config.api_key}":
                    return self._json(*_error(401, "Invalid API key"))
                if parts[3:] == [] and self.command == "POST":
                    with simulator.submission_in_flight():
                        return self._submit(raw)
                job = simulator.jobs.get(parts[3]) if len(parts) > 3 else None
                if job is None:
                    return self._json(*_error(404, "Resource not found"))
                if parts[4:] == [] and self.command == "GET":
                    if self._inject("poll"):
                        return None
                    return self._json(200, simulator._poll(job))
                if parts[4:] == ["content"] and self.command == "GET":
                    if self._inject("content"):
                        return None
                    index = parse_qs(url.query).get("index", ["0"])[0]
                    if job.video is None or index != "0":
                        return self._json(*_error(404, "Video content not available"))
                    if simulator.config.content_redirect:
                        location = f"{simulator.content_base_url}/files/{job.id}.mp4?sig={job.signature}"
                        self.send_response(302)
                        self.send_header("Location", location)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    return self._video(job.video)
                return self._json(*_error(404, "Resource not found"))

            def _submit(self, raw: bytes) -> None:
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    return self._json(*_error(400, "Invalid request parameters: body is not JSON"))
                if simulator._pushback():
                    return self._json(*_error(429, "Rate limit exceeded"), headers={"Retry-After": "1"})
                refused = simulator._credit_refusal()
                if refused is not None:
                    return self._json(refused[0], refused[1], headers=refused[2])
                # A slow or dropped submit still creates the job: the caller cannot know it was accepted.
                if self._inject("submit", on_time=lambda: simulator._submit(body)):
                    return None
                return self._json(*simulator._submit(body))

            def _content(self) -> None:
                url = urlsplit(self.path)
                signed = re.fullmatch(r"/signed/([^/]+)\.mp4", url.path)
                if signed is not None:  # a signed URL: its token is the whole authorization
                    job = simulator.jobs.get(signed.group(1))
                    token = parse_qs(url.query).get("token", [""])[0]
                    if (
                        job is None
                        or job.video is None
                        or token != job.signed_token
                        or "authorization" in {k.lower() for k in self.headers}
                    ):
                        return self._json(403, {"error": {"code": 403, "message": "Forbidden"}})
                    with job.lock:
                        job.signed_downloads += 1
                    return self._video(job.video)
                match = re.fullmatch(r"/files/([^/]+)\.mp4", url.path)
                job = simulator.jobs.get(match.group(1)) if match else None
                signature = parse_qs(url.query).get("sig", [""])[0]
                if job is None or job.video is None or signature != job.signature:
                    return self._json(404, {"error": {"code": 404, "message": "Not found"}})
                if self._inject("content"):
                    return None
                return self._video(job.video)

            def _video(self, video: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(video)))
                self.end_headers()
                # A truncated download announces the full length and stops half-way.
                end = len(video) // 2 if getattr(self, "_truncate", False) else len(video)
                for start in range(0, end, 64 * 1024):
                    self.wfile.write(video[start : min(end, start + 64 * 1024)])
                if end < len(video):
                    self.close_connection = True

            def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _serve

        return Handler


def _error(status: int, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": status, "message": message, "metadata": None}}


def _error_with(status: int, message: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "metadata": metadata}}


def _capability_problem(body: dict[str, Any], model: dict[str, Any]) -> str | None:
    checks = [
        ("duration", body.get("duration"), model.get("supported_durations")),
        ("resolution", body.get("resolution"), model.get("supported_resolutions")),
        ("aspect_ratio", body.get("aspect_ratio"), model.get("supported_aspect_ratios")),
        ("size", body.get("size"), model.get("supported_sizes")),
    ]
    checks += [
        ("frame_type", f.get("frame_type"), model.get("supported_frame_images")) for f in body.get("frame_images") or []
    ]
    for name, value, allowed in checks:
        if value is not None and allowed is not None and value not in allowed:
            return f"{name} {value!r} is not supported by {model['id']}"
    for flag in ("generate_audio", "seed"):
        if body.get(flag) not in (None, False) and model.get(flag) is False:
            return f"{flag} is not supported by {model['id']}"
    allowed = model.get("allowed_passthrough_parameters")
    for slug, options in ((body.get("provider") or {}).get("options") or {}).items():
        for key in (options or {}).get("parameters") or {}:
            if allowed is not None and key not in allowed:
                return f"provider.options.{slug}.parameters.{key} is not allowed for {model['id']}"
    return None


def _reference_url(request: dict[str, Any]) -> str:
    for key in ("input_references", "frame_images"):
        for item in request.get(key) or []:
            url = (item.get("image_url") or {}).get("url")
            if url:
                return str(url)
    raise ValueError("the request has no reference image")


# One client for every reference fetch: a client of its own per fetch built a TLS context each time (the CA
# bundle parsed again), 4 % of local serve's wall time in a profile of a 2,000-job batch. httpx clients are
# thread-safe.
_REFERENCES = httpx.Client(timeout=10, follow_redirects=True)


def _fetch_image(url: str) -> bytes:
    if url.startswith("data:"):
        return base64.b64decode(url.split(",", 1)[1])
    response = _REFERENCES.get(url)
    response.raise_for_status()
    return response.content
