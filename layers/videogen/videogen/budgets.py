"""Budgets per owner (an IAM principal or role, ``tenant:<name>``, a door's owner): monthly and optionally
daily, in USD. A request's estimate (videogen.pricing) is reserved when it is accepted, in the same DynamoDB
transaction that writes its job, so concurrent requests cannot overspend (each reservation is a conditional
write on the period's committed amount) and no crash can leave a job without its reservation or the
reverse. When the job ends its reservation is settled with OpenRouter's ``usage.cost``, or released if
the job never reached OpenRouter (videogen.outbox calls ``settle``; settling twice changes nothing).

Items of the budgets table (key ``owner``, ``period``):
* ``limits``: ``monthly_usd``, ``daily_usd``;
* ``month#YYYY-MM`` / ``day#YYYY-MM-DD``: ``committed`` (reserved + spent) and ``spent``;
* ``reservation#<job id>``: what the job reserved, and in which periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from videogen.aws import cancellation_reasons, client, transact_write

LIMITS = "limits"


class OverBudget(Exception):
    """The estimate does not fit what is left of the owner's budget."""


@dataclass(frozen=True)
class Limits:
    monthly_usd: Decimal | None = None
    daily_usd: Decimal | None = None

    @property
    def any(self) -> bool:
        return self.monthly_usd is not None or self.daily_usd is not None


def _periods(now: datetime) -> tuple[str, str]:
    return f"month#{now:%Y-%m}", f"day#{now:%Y-%m-%d}"


def _n(value: Decimal) -> dict[str, str]:
    return {"N": str(value)}


@dataclass
class Budgets:
    table: str

    def limits(self, owner: str) -> Limits:
        item = (
            client("dynamodb")
            .get_item(TableName=self.table, Key={"owner": {"S": owner}, "period": {"S": LIMITS}}, ConsistentRead=True)
            .get("Item", {})
        )

        def read(name: str) -> Decimal | None:
            return Decimal(item[name]["N"]) if name in item else None

        return Limits(read("monthly_usd"), read("daily_usd"))

    def set_limits(self, owner: str, monthly_usd: Decimal, daily_usd: Decimal | None = None) -> Limits:
        if monthly_usd < 0 or (daily_usd is not None and daily_usd < 0):
            raise ValueError("budgets are amounts of USD, not negative")
        item = {"owner": {"S": owner}, "period": {"S": LIMITS}, "monthly_usd": _n(monthly_usd)}
        if daily_usd is not None:
            item["daily_usd"] = _n(daily_usd)
        client("dynamodb").put_item(TableName=self.table, Item=item)
        return Limits(monthly_usd, daily_usd)

    def reservation(
        self, owner: str, job_id: str, amount: Decimal, limits: Limits, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """The TransactWriteItems entries that reserve ``amount`` for a job within ``limits``: each period's
        committed amount may grow only while it stays within the period's limit."""
        month, day = _periods(now or datetime.now(UTC))
        if any(limit is not None and amount > limit for limit in (limits.monthly_usd, limits.daily_usd)):
            raise OverBudget(amount)  # more than the whole budget: no write could ever fit it
        entries: list[dict[str, Any]] = []
        for period, limit in ((month, limits.monthly_usd), (day, limits.daily_usd)):
            if limit is None:
                continue
            entries.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"owner": {"S": owner}, "period": {"S": period}},
                        "UpdateExpression": "ADD committed :amount",
                        "ConditionExpression": "attribute_not_exists(committed) OR committed <= :room",
                        "ExpressionAttributeValues": {":amount": _n(amount), ":room": _n(limit - amount)},
                    }
                }
            )
        entries.append(
            {
                "Put": {
                    "TableName": self.table,
                    "Item": {
                        "owner": {"S": owner},
                        "period": {"S": f"reservation#{job_id}"},
                        "amount": _n(amount),
                        "periods": {"L": [{"S": e["Update"]["Key"]["period"]["S"]} for e in entries]},
                    },
                    "ConditionExpression": "attribute_not_exists(period)",
                }
            }
        )
        return entries

    def settle(self, owner: str, job_id: str, actual: Decimal) -> bool:
        """Turn a job's reservation into what it really cost (0 releases it). False if there is no
        reservation (none was made, or it was settled already)."""
        key = {"owner": {"S": owner}, "period": {"S": f"reservation#{job_id}"}}
        item = client("dynamodb").get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if item is None:
            return False
        reserved = Decimal(item["amount"]["N"])
        entries: list[dict[str, Any]] = [
            {"Delete": {"TableName": self.table, "Key": key, "ConditionExpression": "attribute_exists(period)"}}
        ]
        for period in item.get("periods", {}).get("L", []):
            entries.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"owner": {"S": owner}, "period": period},
                        "UpdateExpression": "ADD committed :delta, spent :actual",
                        "ExpressionAttributeValues": {":delta": _n(actual - reserved), ":actual": _n(actual)},
                    }
                }
            )
        try:
            transact_write(entries)
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_reasons(exc):
                return False  # settled meanwhile by another delivery of the same ending
            raise  # anything else (a conflict that outlasted the retries): the outbox retries the record
        return True

    def used_ratio(self, owner: str, now: datetime | None = None) -> float | None:
        """How much of the owner's budget is committed now: the fuller of the month and the day (1 = all of
        it). None without a budget."""
        limits = self.limits(owner)
        ratios = []
        for period, limit in zip(
            _periods(now or datetime.now(UTC)), (limits.monthly_usd, limits.daily_usd), strict=True
        ):
            if limit is None:
                continue
            item = (
                client("dynamodb")
                .get_item(
                    TableName=self.table, Key={"owner": {"S": owner}, "period": {"S": period}}, ConsistentRead=True
                )
                .get("Item", {})
            )
            committed = Decimal(item.get("committed", {"N": "0"})["N"])
            ratios.append(float(committed / limit) if limit > 0 else (1.0 if committed > 0 else 0.0))
        return max(ratios) if ratios else None

    def show(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Limits, reserved and spent per owner for the current month and day (``budgets show``)."""
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        if owner is not None:
            kwargs["FilterExpression"] = "#o = :owner"
            kwargs["ExpressionAttributeNames"] = {"#o": "owner"}
            kwargs["ExpressionAttributeValues"] = {":owner": {"S": owner}}
        items = [i for page in client("dynamodb").get_paginator("scan").paginate(**kwargs) for i in page["Items"]]
        month, day = _periods(datetime.now(UTC))
        owners: dict[str, dict[str, Any]] = {}
        for item in items:
            entry = owners.setdefault(item["owner"]["S"], {"owner": item["owner"]["S"]})
            period = item["period"]["S"]
            if period == LIMITS:
                entry["limits"] = {
                    "monthly_usd": float(item["monthly_usd"]["N"]) if "monthly_usd" in item else None,
                    "daily_usd": float(item["daily_usd"]["N"]) if "daily_usd" in item else None,
                }
            elif period in (month, day):
                committed = Decimal(item.get("committed", {"N": "0"})["N"])
                spent = Decimal(item.get("spent", {"N": "0"})["N"])
                entry["month" if period == month else "day"] = {
                    "period": period.split("#", 1)[1],
                    "reserved_usd": float(committed - spent),
                    "spent_usd": float(spent),
                }
        for entry in owners.values():
            # As `videogen budgets show` promises: limits, reserved, spent (this month's, the monthly budget's
            # period; the day's are under "day").
            entry.setdefault("limits", {"monthly_usd": None, "daily_usd": None})
            month_figures = entry.get("month", {})
            entry["reserved"] = month_figures.get("reserved_usd", 0.0)
            entry["spent"] = month_figures.get("spent_usd", 0.0)
        return [owners[name] for name in sorted(owners)]
