"""`videogen local serve --no-preflight / --allow-private-references` reach the stack's configuration."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from videogen_local.localmode import stack
from videogen_local.localmode.stack import LocalStackConfig
from videogen_local.main import main


class _Captured(Exception):
    pass


@pytest.mark.parametrize(
    ("flags", "env", "preflight", "allow_private"),
    [
        ([], {}, True, False),
        (["--no-preflight"], {}, False, False),
        (["--allow-private-references"], {}, True, True),
        ([], {"VIDEOGEN_PREFLIGHT": "off", "VIDEOGEN_PREFLIGHT_ALLOW_PRIVATE": "1"}, False, True),
    ],
)
def test_serve_flags(
    monkeypatch: pytest.MonkeyPatch, flags: list[str], env: dict[str, str], preflight: bool, allow_private: bool
) -> None:
    seen: list[LocalStackConfig] = []

    def fake(config: LocalStackConfig, *args: Any, **kwargs: Any) -> None:
        seen.append(config)
        raise _Captured

    monkeypatch.delenv("VIDEOGEN_PREFLIGHT", raising=False)
    monkeypatch.delenv("VIDEOGEN_PREFLIGHT_ALLOW_PRIVATE", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(stack, "LocalStack", fake)
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # serve_local redirects it; restored after the test
    with pytest.raises(_Captured):
        main(["local", "serve", "--port", "0", *flags])
    assert (seen[0].preflight, seen[0].preflight_allow_private) == (preflight, allow_private)
