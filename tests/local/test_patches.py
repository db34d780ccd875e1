"""Each moto patch of local mode still does what it claims on the pinned moto: an upgrade that breaks
one fails here, loudly, instead of silently dropping invocations in local mode."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

import pytest

from videogen_local.localmode import patches


def test_moto_is_the_version_the_patches_were_written_for() -> None:
    # The patches replace moto internals (LambdaFunction._invoke_lambda, Rule.send_to_targets,
    # s3.notifications._invoke_awslambda). Re-run these checks and review them before moving the pin.
    assert version("moto") == "5.2.5"


@pytest.mark.parametrize("check", patches.SMOKE_CHECKS, ids=lambda check: check.__name__)
def test_patch_smoke_check(check: Callable[[], None]) -> None:
    check()


def test_smoke_checks_refuse_to_run_beside_a_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    # mock_aws would reset the running stack's moto state.
    monkeypatch.setattr(patches, "ASYNC_INVOKER", lambda fn_arn, event: None)
    with pytest.raises(RuntimeError, match="local stack is running"):
        patches.check_invoke_patch()
