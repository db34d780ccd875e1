"""Carry template.yaml's checkov skips onto the resources the SAM transform generates.

scripts/check_template.sh runs checkov twice: on template.yaml (checkov reads SAM) and on the
transformed CloudFormation template, where the IAM roles, Lambda permissions and the API stage that
SAM generates are visible (checkov's IAM checks only run there). Skips are written once, on the SAM
resource (``Metadata: checkov: skip:``). The transform copies a function's Metadata to its
AWS::Lambda::Function but not, for example, an AWS::Serverless::Api's to the AWS::ApiGateway::Stage it
makes, so this copies each SAM resource's checkov skips to every resource generated from it (logical
id = the SAM resource's id + a suffix, the longest such id wins). Resources written by hand in
template.yaml keep exactly their own Metadata.

    .venv-sam/bin/python tests/template/checkov_skips.py template.yaml transformed.json > out.json
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `tests.template` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.template.cfn_template import load_template

SAM_PREFIX = "AWS::Serverless::"


def checkov_metadata(resource: dict[str, Any]) -> dict[str, Any] | None:
    metadata = resource.get("Metadata")
    found = metadata.get("checkov") if isinstance(metadata, dict) else None
    return found if isinstance(found, dict) else None


def carry_checkov_skips(sam: dict[str, Any], transformed: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``transformed`` whose SAM-generated resources carry their SAM resource's checkov skips."""
    sam_resources: dict[str, Any] = sam.get("Resources", {})
    owners = sorted(
        (
            logical_id
            for logical_id, resource in sam_resources.items()
            if str(resource.get("Type", "")).startswith(SAM_PREFIX) and checkov_metadata(resource) is not None
        ),
        key=len,
        reverse=True,
    )
    result = copy.deepcopy(transformed)
    for logical_id, resource in result.get("Resources", {}).items():
        written = sam_resources.get(logical_id)
        if written is not None and not str(written.get("Type", "")).startswith(SAM_PREFIX):
            continue  # written by hand in template.yaml: its own Metadata, nothing added
        owner = next((o for o in owners if logical_id.startswith(o)), None)
        if owner is None:
            continue
        metadata = resource.setdefault("Metadata", {})
        if "checkov" not in metadata:
            metadata["checkov"] = copy.deepcopy(checkov_metadata(sam_resources[owner]))
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {argv[0]} template.yaml transformed.json > out.json", file=sys.stderr)
        return 2
    sam = load_template(argv[1])
    transformed = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
    json.dump(carry_checkov_skips(sam, transformed), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
