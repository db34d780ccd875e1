"""`videogen budgets set|show`: monthly (and daily) USD budgets per owner (videogen.budgets).

An owner is written as the API records it: an IAM principal or role ARN (a role with a path is read as
the role, as owners are), or ``tenant:<name>`` for an API-key tenant. The table is found as for
`videogen keys`: ``--stack`` (its ``BudgetsTableName`` output), ``--table`` (local serve's ready line:
``budgets_table``, with ``AWS_ENDPOINT_URL`` set to its ``aws_endpoint_url``) or ``VIDEOGEN_BUDGETS_TABLE``.
"""

from __future__ import annotations

import argparse
import json
from decimal import Decimal, InvalidOperation

from videogen_local.tables import add_table_arguments, table_from


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="budgets_command", required=True)
    set_verb = verbs.add_parser("set", help="set an owner's monthly (and daily) budget in USD")
    set_verb.add_argument("--owner", required=True)
    set_verb.add_argument("--monthly-usd", required=True, type=_usd)
    set_verb.add_argument("--daily-usd", type=_usd)
    add_table_arguments(set_verb, "BudgetsTableName")
    show = verbs.add_parser("show", help="limits, reserved and spent this month and today, per owner")
    show.add_argument("--owner")
    add_table_arguments(show, "BudgetsTableName")


def run(args: argparse.Namespace) -> int:
    from videogen.budgets import Budgets
    from videogen.owners import normalize_owner

    budgets = Budgets(table_from(args, "BudgetsTableName", "VIDEOGEN_BUDGETS_TABLE"))
    owner = normalize_owner(args.owner) if args.owner else None
    if args.budgets_command == "set":
        assert owner is not None
        budgets.set_limits(owner, args.monthly_usd, args.daily_usd)
    print(json.dumps(budgets.show(owner), indent=2))
    return 0


def _usd(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount of USD: {text!r}") from None
    if value < 0 or not value.is_finite():
        raise argparse.ArgumentTypeError(f"not an amount of USD: {text!r}")
    return value
