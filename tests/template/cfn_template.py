"""Offline helpers for template.yaml: a CloudFormation-tag-aware YAML loader and the SAM transform.

Used by tests/template/test_template.py (in the project venv) and by scripts/check_template.sh,
which runs this file with the SAM CLI's venv (it has aws-sam-translator) to write the transformed
CloudFormation template that cfn-lint then checks (cycles, GetAtt attribute names, ...):

    .venv-sam/bin/python tests/template/cfn_template.py template.yaml > transformed.json

Only PyYAML is needed to load; the transform needs aws-sam-translator. Nothing here talks to AWS.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


# --------------------------------------------------------------------------------------- YAML loading


class _CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns ``!Ref X`` / ``!GetAtt A.B`` / ``!Sub ...`` ... into their JSON forms."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt" and isinstance(value, str):
            resource, _, attribute = value.partition(".")
            value = [resource, attribute]
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def _no_timestamps() -> None:
    # CloudFormation treats "2010-09-09" as a string; YAML 1.1 would make it a date.
    for first, resolvers in list(_CfnLoader.yaml_implicit_resolvers.items()):
        _CfnLoader.yaml_implicit_resolvers[first] = [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]


_no_timestamps()


def load_template(path: Path | str = TEMPLATE_PATH) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return data


# --------------------------------------------------------------------------------------- SAM transform


class _NoManagedPolicies:
    """The real loader asks IAM for the managed-policy name -> ARN map; the template uses none by name."""

    def load(self) -> dict[str, str]:
        return {}


def offline_sam_template(template: dict[str, Any], root: Path = REPO_ROOT) -> dict[str, Any]:
    """What `sam build` + `sam package` would hand to CloudFormation, minus the uploads: local code
    paths become s3:// placeholders and DefinitionUri files are inlined as Definition."""
    template = copy.deepcopy(template)
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://offline-artifacts/{logical_id}.zip"
        uri = props.get("DefinitionUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props["Definition"] = json.loads((root / uri).read_text(encoding="utf-8"))
            del props["DefinitionUri"]
    return template


def translate(template: dict[str, Any], root: Path = REPO_ROOT) -> dict[str, Any]:
    """Run the SAM transform offline (needs aws-sam-translator importable)."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from samtranslator.translator.transform import transform

    return transform(offline_sam_template(template, root), {}, _NoManagedPolicies())  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- references


_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def references(node: Any) -> set[str]:
    """Logical ids (or pseudo parameters) a piece of template refers to: Ref, Fn::GetAtt and Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text, variables = (value[0], value[1]) if isinstance(value, list) else (value, {})
                local = set(variables) if isinstance(variables, dict) else set()
                for name in _SUB_VARIABLE.findall(text):
                    base = name.split(".")[0]
                    if base not in local:
                        found.add(base)
                found |= references(variables)
            else:
                found |= references(value)
    elif isinstance(node, list):
        for item in node:
            found |= references(item)
    return found


def dependency_graph(template: dict[str, Any]) -> dict[str, set[str]]:
    """Resource -> resources it depends on (explicitly or through intrinsics), as CloudFormation sees it."""
    resources = template.get("Resources", {})
    graph: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else list(depends)
        refs = references({k: v for k, v in resource.items() if k != "DependsOn"}) | set(depends)
        graph[logical_id] = {r for r in refs if r in resources}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One dependency cycle (as a path that ends where it starts), or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = grey
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == grey:
                return [*stack[stack.index(nxt) :], nxt]
            if colour.get(nxt) == white:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = black
        return None

    for start in sorted(graph):
        if colour[start] == white:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else TEMPLATE_PATH
    transformed = translate(load_template(path), path.resolve().parent)
    cycle = find_cycle(dependency_graph(transformed))
    if cycle:
        print("circular dependency: " + " -> ".join(cycle), file=sys.stderr)
        return 1
    json.dump(transformed, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
