"""Resource names, mirroring template.yaml (S = stack name): tests/localmode/test_names_and_wiring.py
checks they agree."""

from __future__ import annotations

from dataclasses import dataclass

ACCOUNT = "123456789012"
REGION = "us-east-1"

# folder under functions/ -> function name suffix (S-<suffix>)
FUNCTIONS = {
    "api": "api",
    "intake_s3": "intake-s3",
    "intake_event": "intake-event",
    "submit": "submit",
    "poll": "poll",
    "download": "download",
    "fail": "fail",
    "publish": "publish",
    "authorizer": "authorizer",
    "openrouter_callback": "openrouter-callback",
    "callback_nudge": "callback-nudge",
    "webhook_deliver": "webhook-deliver",
    "batch": "batch",
}


@dataclass(frozen=True)
class Names:
    stack: str = "videogen-local"
    account: str = ACCOUNT
    region: str = REGION

    @property
    def table(self) -> str:
        return f"{self.stack}-jobs"

    @property
    def keys_table(self) -> str:
        return f"{self.stack}-keys"

    @property
    def budgets_table(self) -> str:
        return f"{self.stack}-budgets"

    @property
    def control_table(self) -> str:
        return f"{self.stack}-control"

    @property
    def batches_table(self) -> str:
        return f"{self.stack}-batches"

    @property
    def batch_queue(self) -> str:
        return f"{self.stack}-batch"

    @property
    def batch_dead_letter_queue(self) -> str:
        return f"{self.stack}-batch-dlq"

    @property
    def bucket(self) -> str:
        return f"{self.stack}-{self.account}-{self.region}"

    @property
    def queue(self) -> str:
        return f"{self.stack}-submit"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.stack}-submit-dlq"

    @property
    def callback_queue(self) -> str:
        return f"{self.stack}-callback"

    @property
    def callback_dead_letter_queue(self) -> str:
        return f"{self.stack}-callback-dlq"

    @property
    def webhook_secret(self) -> str:
        return f"{self.stack}/openrouter-webhook-secret"

    @property
    def webhook_queue(self) -> str:
        return f"{self.stack}-webhooks"

    @property
    def webhook_dead_letter_queue(self) -> str:
        return f"{self.stack}-webhooks-dlq"

    @property
    def webhook_signing_table(self) -> str:
        return f"{self.stack}-webhook-signing"

    @property
    def webhook_signing_key(self) -> str:
        return f"{self.stack}/webhook-signing-key"

    @property
    def intake_dead_letter_queue(self) -> str:
        return f"{self.stack}-intake-dlq"

    @property
    def outbox_dead_letter_queue(self) -> str:
        return f"{self.stack}-outbox-dlq"

    @property
    def results_queue(self) -> str:
        # Local only: every outbound event lands here so callers and tests can read them.
        return f"{self.stack}-results"

    @property
    def api(self) -> str:
        return f"{self.stack}-api"

    @property
    def event_bus(self) -> str:
        return f"{self.stack}-bus"

    @property
    def state_machine(self) -> str:
        return f"{self.stack}-video-job"

    @property
    def secret(self) -> str:
        return f"{self.stack}/openrouter-api-key"

    def function(self, folder: str) -> str:
        return f"{self.stack}-{FUNCTIONS[folder]}"

    def function_arn(self, folder: str) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account}:function:{self.function(folder)}"

    @property
    def state_machine_arn(self) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{self.state_machine}"
