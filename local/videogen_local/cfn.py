"""template.yaml as data: the local stack reads its settings from the template it stands in for."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

# libyaml's parser when PyYAML was built with it (the wheels are): the pure-Python one took 1.4 s for
# template.yaml, a seventh of local serve's start-up.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TemplateError(Exception):
    """Not a CloudFormation template, or not the shape this code expects."""


class _CfnLoader(_SafeLoader):  # type: ignore[misc,valid-type]  # PyYAML ships no type hints
    """Reads ``!Sub`` / ``!Ref`` / ``!GetAtt`` ... as their JSON forms (``{"Fn::Sub": ...}``)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """The template as data; a copy of its own for each caller (parsed once per file version)."""
    resolved = path.resolve()
    return copy.deepcopy(_parsed(resolved, resolved.stat().st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, _version: int) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template")
    return data
