"""The local trigger path: moto's S3/SQS server, S3 -> SQS notification, poller -> handler.

moto's server listens on 127.0.0.1; the bucket notifies an SQS queue, and a poller hands each
SQS batch to the real ingest handler in-process.

It is the production path (S3 -> SQS -> Lambda with partial-batch failures) without AWS or a
container runtime: failed messages become visible again after the visibility timeout and, after
`MAX_RECEIVES`, move to the dead-letter queue, as they do on AWS.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from iotpipe import bootstrap

DEFAULT_BUCKET = "iotpipe-raw"
DEFAULT_QUEUE = "iotpipe-ingest"
INCOMING_PREFIX = "incoming/"
VISIBILITY_SECONDS = 5
MAX_RECEIVES = 3
REGION = "us-east-1"
LOCAL_KEY = "local"  # moto accepts any credentials; these never leave 127.0.0.1

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class LocalContext:
    """The parts of a Lambda context the handler uses."""

    timeout_seconds: float = 900.0
    function_name: str = "iotpipe-ingest-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:iotpipe-ingest"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this (pretend) invocation times out."""
        return int(max(0.0, self.timeout_seconds - (time.monotonic() - self.started)) * 1000)


def local_client(service: str, endpoint: str) -> Any:
    """Return a boto3 client for a local stand-in server (fixed region and dummy credentials)."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=LOCAL_KEY,
        aws_secret_access_key=LOCAL_KEY,
    )


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalStack:
    """moto's server with iotpipe's bucket, queue (+ DLQ) and notification.

    Parameters
    ----------
    port
        Port on 127.0.0.1 (a free one by default).
    bucket, queue
        Names.
    """

    def __init__(
        self, port: int | None = None, bucket: str = DEFAULT_BUCKET, queue: str = DEFAULT_QUEUE
    ) -> None:
        self.port = port or free_port()
        self.bucket = bucket
        self.queue = queue
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self.queue_url = ""
        self.dlq_url = ""

    def start(self) -> LocalStack:
        """Start the server and create the bucket, the queues and the notification."""
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        # moto keeps its state per process, across servers: start from nothing.
        reset = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()  # noqa: S310 (our 127.0.0.1 server)
        s3, sqs = self.client("s3"), self.client("sqs")
        s3.create_bucket(Bucket=self.bucket)
        self.dlq_url = sqs.create_queue(QueueName=f"{self.queue}-dlq")["QueueUrl"]
        dlq_arn = self._arn(self.dlq_url)
        self.queue_url = sqs.create_queue(
            QueueName=self.queue,
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
                ),
            },
        )["QueueUrl"]
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": self._arn(self.queue_url),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": INCOMING_PREFIX}]}
                        },
                    }
                ]
            },
        )
        # Every runtime built from now on reads and writes through this server.
        bootstrap.configure(aws_client=self.client)
        return self

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        bootstrap.configure(aws_client=None)
        bootstrap.use_ingest_runtime(None)  # release this thread's connections now

    def client(self, service: str) -> Any:
        """Return a boto3 client for the local server."""
        return local_client(service, self.endpoint)

    def upload(self, path: str, key: str) -> None:
        """Upload a file (multipart above 8 MB, as the AWS CLI does)."""
        self.client("s3").upload_file(path, self.bucket, key)

    def _arn(self, queue_url: str) -> str:
        attrs = self.client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"]
        )
        return str(attrs["Attributes"]["QueueArn"])


class Poller:
    """Receive SQS messages and invoke the handler with the SQS event Lambda would send.

    Messages the handler reports in ``batchItemFailures`` (or all, if it raises) are left on
    the queue, to come back after the visibility timeout.
    """

    def __init__(
        self, stack: LocalStack, handler: Handler | None = None, timeout_seconds: float = 900.0
    ) -> None:
        self.stack = stack
        self._sqs = stack.client("sqs")
        self._handler = handler
        self.timeout_seconds = timeout_seconds  # each invocation's (the function's timeout)
        self.invocations = 0

    def poll_once(self, wait_seconds: int = 1) -> int:
        """Receive up to 10 messages, run them; return how many were received."""
        response = self._sqs.receive_message(
            QueueUrl=self.stack.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(m) for m in messages]}
        self.invocations += 1
        try:
            result = self.handler()(event, LocalContext(self.timeout_seconds))
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:  # as on AWS: the whole batch comes back
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.stack.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        return len(messages)

    def drain(self, timeout_seconds: float = 60.0, idle_polls: int = 2) -> None:
        """Poll until the queue has been empty ``idle_polls`` times in a row (or timeout)."""
        deadline = time.monotonic() + timeout_seconds
        idle = 0
        while idle < idle_polls and time.monotonic() < deadline:
            idle = idle + 1 if self.poll_once() == 0 else 0

    def handler(self) -> Handler:
        """Return the ingest handler (imported on first use, after the environment is set)."""
        if self._handler is None:
            from iotpipe.handlers.ingest import handler

            self._handler = handler
        return self._handler

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {},
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:000000000000:{self.stack.queue}",
            "awsRegion": REGION,
        }
