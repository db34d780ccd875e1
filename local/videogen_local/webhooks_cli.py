"""`videogen webhooks secret --owner O [--rotate]`: an owner's webhook signing secret, for operators.

Owners read their own with GET /webhooks/secret (IAM) or GET /api/v1/webhooks/secret (an API key); the S3 and
EventBridge doors' owners (``s3:<bucket>``, ``eventbridge:<account>:<source>``) cannot call an API, so an
operator derives theirs here, with read access to the signing table and the signing key. Found as for
`videogen keys`: ``--stack`` (its WebhookSigningTableName and WebhookSigningKeySecretArn outputs), or
``--table`` and ``--key-secret`` (local serve's ready line: ``webhook_signing_table``,
``webhook_signing_key_secret``, with ``AWS_ENDPOINT_URL`` set to its ``aws_endpoint_url``).
"""

from __future__ import annotations

import argparse
import json

from videogen_local.tables import add_table_arguments, table_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="webhooks_command", required=True)
    secret = verbs.add_parser("secret", help="an owner's signing secret (created on first use), or a new one")
    secret.add_argument("--owner", required=True, help="as jobs record it: an IAM ARN, tenant:<name>, s3:<bucket>...")
    secret.add_argument("--rotate", action="store_true", help="a new secret; the old one signs too for 24 hours")
    secret.add_argument("--key-secret", help="the signing key's secret ARN (local serve's ready line)")
    add_table_arguments(secret, "WebhookSigningTableName")


def run(args: argparse.Namespace) -> int:
    from videogen.owners import normalize_owner
    from videogen.services import signing_key_provider
    from videogen.settings import Settings
    from videogen.webhooks import SigningKeys

    table = table_from(args, "WebhookSigningTableName", "VIDEOGEN_WEBHOOK_SIGNING_TABLE")
    key_secret = args.key_secret or (args.stack and table_from_output(args.stack, "WebhookSigningKeySecretArn"))
    if not key_secret:
        raise SystemExit("pass --stack NAME (deployed) or --key-secret ARN (local serve's ready line)")
    keys = SigningKeys(table, signing_key_provider(Settings(webhook_signing_key_secret=key_secret)))
    owner = normalize_owner(args.owner)
    view = keys.rotate(owner) if args.rotate else keys.current(owner)
    print(json.dumps({"owner": owner, **view.body()}, indent=2))
    return 0


def table_from_output(stack: str, output: str) -> str:
    namespace = argparse.Namespace(table=None, stack=stack, region=None)
    return table_from(namespace, output, "VIDEOGEN_UNUSED")
