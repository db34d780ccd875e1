"""Which DynamoDB table a CLI verb works on: a deployed stack's output, an explicit name, or an env var."""

from __future__ import annotations

import argparse
import os


def add_table_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", help=f"a deployed stack: its {what} output")
    where.add_argument("--table", help="the table's name (local serve: named in its ready line)")
    parser.add_argument("--region", help="AWS region of the stack (default: your AWS configuration)")


def table_from(args: argparse.Namespace, output: str, env_name: str) -> str:
    """``--table``, else the ``output`` of ``--stack``'s CloudFormation outputs, else ``env_name``."""
    if args.region:
        os.environ["AWS_DEFAULT_REGION"] = args.region
    if args.table:
        return str(args.table)
    if args.stack:
        from videogen.aws import client

        stacks = client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        if output not in outputs:
            raise SystemExit(f"stack {args.stack} has no {output} output (deployed before this feature?)")
        return str(outputs[output])
    if os.environ.get(env_name):
        return os.environ[env_name]
    raise SystemExit(f"pass --stack NAME (deployed) or --table NAME (local serve's ready line), or set {env_name}")
