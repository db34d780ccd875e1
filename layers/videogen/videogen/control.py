"""One item of the control table (key ``name``): the service's own switches, read consistently and changed by
conditional writes. The credit breaker (videogen.breaker) and the shared submission rate (videogen.pressure)
are each one such item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from videogen.aws import client


@dataclass(frozen=True)
class ControlItem:
    table: str
    name: str

    def read(self) -> dict[str, Any]:
        """The item's attributes as DynamoDB returns them ({} when it was never written)."""
        item: dict[str, Any] = (
            client("dynamodb")
            .get_item(TableName=self.table, Key={"name": {"S": self.name}}, ConsistentRead=True)
            .get("Item", {})
        )
        return item

    def update(
        self,
        expression: str,
        values: dict[str, Any],
        condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        """Apply ``expression`` if ``condition`` holds; False when it does not (another writer got there first)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"name": {"S": self.name}},
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            client("dynamodb").update_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return False
        return True


def text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value is not None else None


def number(item: dict[str, Any], name: str) -> float | None:
    value = item.get(name, {}).get("N")
    return float(value) if value is not None else None


def n(value: float) -> dict[str, str]:
    """A DynamoDB number attribute value."""
    return {"N": f"{value:.6f}"}
