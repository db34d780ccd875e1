"""`videogen keys create|list|revoke`: tenant API keys for the OpenRouter-compatible routes.

The keys table is found from a deployed stack's outputs (``--stack NAME``: its ``KeysTableName``), or named
with ``--table`` (local serve's ready line calls it ``keys_table``; set ``AWS_ENDPOINT_URL`` to the line's
``aws_endpoint_url``), or ``VIDEOGEN_KEYS_TABLE``. ``create`` prints the key once: only its hash is stored.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from videogen_local.tables import add_table_arguments, table_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="keys_command", required=True)

    def verb(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_text)
        add_table_arguments(sub, "KeysTableName")
        return sub

    create = verb("create", "issue a key for a tenant; prints it once")
    create.add_argument("--tenant", required=True)
    create.add_argument("--label")
    create.add_argument(
        "--owner", help="an IAM principal (role) ARN the key acts for: its jobs are that principal's on both APIs"
    )
    listing = verb("list", "the keys (never the keys themselves): id, tenant, label, created, last used, revoked")
    listing.add_argument("--tenant")
    revoke = verb("revoke", "revoke a key (stops working within the authorizer's cache time)")
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    from videogen.keys import ApiKeys

    keys = ApiKeys(table_from(args, "KeysTableName", "VIDEOGEN_KEYS_TABLE"))
    result: Any
    if args.keys_command == "create":
        try:
            issued = keys.create(args.tenant, args.label, args.owner)
        except ValueError as exc:
            raise SystemExit(str(exc)) from None
        result = {"key": issued.key, "key_id": issued.key_id, "tenant": issued.tenant}
        if issued.iam_owner:
            result["owner"] = issued.iam_owner
    elif args.keys_command == "list":
        result = [record.public() for record in keys.list(args.tenant)]
    else:
        revoked = keys.revoke(args.key_id)
        if revoked is None:
            raise SystemExit(f"no key {args.key_id}")
        result = revoked.public()
    print(json.dumps(result, indent=2))
    return 0
