"""In-process AWS calls (localmode/in_process.py): the calls a local stack makes in its own process reach moto
without its HTTP server and read exactly as they do over HTTP; calls to any other address are left alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError

from videogen_local.localmode import in_process, patches
from videogen_local.localmode.stack import free_port

REGION = "us-east-1"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, list[str]]]:
    """moto's server on loopback, every request it serves recorded (method and path)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.server import ThreadedMotoServer

    patches.apply()
    served: list[str] = []
    original = DomainDispatcherApplication.__call__

    def counted(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        served.append(f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}")
        return original(self, environ, start_response)

    monkey = pytest.MonkeyPatch()
    monkey.setattr(DomainDispatcherApplication, "__call__", counted)
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        yield port, served
    finally:
        in_process.stop()
        moto.stop()
        monkey.undo()


def client(port: int, service: str, host: str = "127.0.0.1") -> Any:
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=f"http://{host}:{port}",
        region_name=REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_calls_to_the_local_endpoint_never_reach_the_server_and_read_as_over_http(
    server: tuple[int, list[str]],
) -> None:
    port, served = server
    name = f"t-{uuid.uuid4().hex[:8]}"
    over_http = client(port, "sqs")
    http_url = over_http.create_queue(QueueName=f"{name}-http")["QueueUrl"]
    assert served, "before serve(), a call goes to the server"

    in_process.serve(port)
    try:
        served.clear()
        sqs, s3, dynamodb = client(port, "sqs"), client(port, "s3"), client(port, "dynamodb", host="localhost")
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        # The queue URL names the address the call was sent to, as the server's answer does.
        assert url == http_url.removesuffix("-http") and url.startswith(f"http://127.0.0.1:{port}/")
        sqs.send_message(
            QueueUrl=url, MessageBody="hello", MessageAttributes={"a": {"DataType": "String", "StringValue": "b"}}
        )
        [message] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], WaitTimeSeconds=1)["Messages"]
        assert message["Body"] == "hello" and message["MessageAttributes"]["a"]["StringValue"] == "b"
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

        # S3 by path, a multipart upload of a bytearray part (as storage.py sends them), bytes intact; a missing
        # key is S3's own 404 error.
        s3.create_bucket(Bucket=name)
        upload = s3.create_multipart_upload(Bucket=name, Key="v.mp4")["UploadId"]
        part = bytes(range(256)) * 20_480  # 5 MiB, S3's smallest part but the last
        etag = s3.upload_part(Bucket=name, Key="v.mp4", UploadId=upload, PartNumber=1, Body=bytearray(part))["ETag"]
        s3.complete_multipart_upload(
            Bucket=name, Key="v.mp4", UploadId=upload, MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]}
        )
        assert s3.get_object(Bucket=name, Key="v.mp4")["Body"].read() == part
        with pytest.raises(ClientError) as missing:
            s3.head_object(Bucket=name, Key="nothing")
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

        # DynamoDB (through "localhost", as the Step Functions interpreter addresses it): a failed condition
        # is the ClientError botocore raises for DynamoDB's answer.
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.put_item(TableName=name, Item={"k": {"S": "1"}}, ConditionExpression="attribute_not_exists(k)")
        with pytest.raises(ClientError) as failed:
            dynamodb.put_item(TableName=name, Item={"k": {"S": "1"}}, ConditionExpression="attribute_not_exists(k)")
        assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert served == []
    finally:
        in_process.stop()
    # Stopped: over HTTP again, to the same state.
    assert client(port, "dynamodb").get_item(TableName=name, Key={"k": {"S": "1"}})["Item"]["k"] == {"S": "1"}
    assert served


def test_a_request_to_any_other_address_is_left_to_the_network(server: tuple[int, list[str]]) -> None:
    port, _ = server
    in_process.serve(port)
    try:
        for url in (f"http://127.0.0.1:{port + 1}/", "https://dynamodb.us-east-1.amazonaws.com/", "http://10.0.0.1/"):
            request = AWSPreparedRequest("POST", url, {}, b"{}", False)
            assert in_process.answer_in_process("before-send.dynamodb.GetItem", request) is None
        # A service local mode does not route in-process goes over HTTP too.
        request = AWSPreparedRequest("POST", f"http://127.0.0.1:{port}/", {}, b"{}", False)
        assert in_process.answer_in_process("before-send.kinesis.PutRecord", request) is None
    finally:
        in_process.stop()
    request = AWSPreparedRequest("POST", f"http://127.0.0.1:{port}/", {}, b"{}", False)
    assert in_process.answer_in_process("before-send.dynamodb.GetItem", request) is None
