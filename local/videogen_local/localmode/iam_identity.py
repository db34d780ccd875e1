"""Who signed a request: the local stand-in for API Gateway's AWS_IAM authorizer.

API Gateway verifies a SigV4 signature and puts the signer's ARN in ``requestContext.identity.userArn``.
Locally the signer is named by its access key: moto's STS knows every key it issued (an assumed role's
session, an IAM user's key), so ``GetCallerIdentity`` made with that key answers with the same ARN AWS
would. The signature itself is not verified (moto does not keep what it would take): local mode is for
one developer's machine, not a security boundary. A request without a signature keeps the
``X-Videogen-Caller`` header (or the default local developer).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping

import boto3
from botocore.config import Config

_CREDENTIAL = re.compile(r"^AWS4-HMAC-SHA256\s+Credential=(?P<key>[A-Z0-9]+)/")
# What moto's STS answers for a key it never issued.
_UNKNOWN = re.compile(r"^arn:aws:sts::\d{12}:user/moto$")


class InvalidSignature(Exception):
    """The request is signed with a key nobody was given (API Gateway answers 403)."""


class SigV4Identities:
    def __init__(self, endpoint_url: str, region: str) -> None:
        self._endpoint_url = endpoint_url
        self._region = region
        self._known: dict[tuple[str, str | None], str] = {}
        self._lock = threading.Lock()

    def principal(self, headers: Mapping[str, str]) -> str | None:
        """The signer's ARN; None for an unsigned request. Raises InvalidSignature."""
        lowered = {name.lower(): value for name, value in headers.items()}
        match = _CREDENTIAL.match(lowered.get("authorization", ""))
        if match is None:
            return None
        credential = (match["key"], lowered.get("x-amz-security-token"))
        with self._lock:
            if credential in self._known:
                return self._known[credential]
        sts = boto3.client(
            "sts",
            endpoint_url=self._endpoint_url,
            region_name=self._region,
            aws_access_key_id=credential[0],
            aws_secret_access_key="not-verified-locally",
            aws_session_token=credential[1],
            config=Config(retries={"max_attempts": 1}),
        )
        arn: str = sts.get_caller_identity()["Arn"]
        if _UNKNOWN.match(arn):
            raise InvalidSignature(credential[0])
        with self._lock:
            self._known[credential] = arn
        return arn
