"""template.yaml, read as data: handlers exist, env vars are set, IAM is least privilege."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from iotpipe import config

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
TAGS = (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Condition",
    "Select",
    "Join",
    "Split",
    "FindInMap",
    "ImportValue",
    "GetAZs",
    "Base64",
    "Cidr",
)


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form functions, kept as {"Fn": value}."""


def _construct(tag: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            return {tag: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {tag: loader.construct_sequence(node, deep=True)}
        return {tag: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]

    return construct


for _tag in TAGS:
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506
    return doc


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }


def statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        for policy in props.get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                found += policy["Statement"]
            if isinstance(policy, dict) and "PolicyDocument" in policy:
                found += policy["PolicyDocument"]["Statement"]
    return found


def test_handlers_exist(template: dict[str, Any]) -> None:
    handlers = {name: f["Properties"]["Handler"] for name, f in functions(template).items()}
    assert handlers == {
        "IngestFunction": "iotpipe.handlers.ingest.handler",
        "RetrieveFunction": "iotpipe.handlers.retrieve.handler",
    }
    for path in handlers.values():
        module, attribute = path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), attribute))


def test_every_env_var_a_function_reads_is_set(template: dict[str, Any]) -> None:
    shared = template["Globals"]["Function"]["Environment"]["Variables"]
    known = {v for k, v in vars(config).items() if k.startswith("ENV_")}
    for name, function in functions(template).items():
        env = {**shared, **function["Properties"].get("Environment", {}).get("Variables", {})}
        needed = {
            "RetrieveFunction": config.RETRIEVE_LAMBDA_ENV,
            "IngestFunction": config.INGEST_LAMBDA_ENV,
        }.get(name, config.LAMBDA_ENV)
        assert set(needed) <= set(env), (name, set(needed) - set(env))
        assert {k for k in env if k.startswith("IOTPIPE_")} <= known, name  # no misspelt names


def test_iam_names_no_wildcard_resource_for_s3_sqs_or_secrets(template: dict[str, Any]) -> None:
    checked = 0
    for statement in statements(template):
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        if not any(a.split(":")[0] in ("s3", "sqs", "secretsmanager") for a in actions):
            continue
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for resource in resources:
            assert resource != "*", statement
            if isinstance(resource, dict) and "Sub" in resource:
                assert not resource["Sub"].endswith(":::*"), statement
        checked += 1
    assert checked >= 5
    # No managed policy that grants S3/SQS/Secrets Manager on everything, and no SAM SQS event
    # (which would attach AWSLambdaSQSQueueExecutionRole, Resource "*").
    broad = {
        "AmazonS3FullAccess",
        "AmazonS3ReadOnlyAccess",
        "AmazonSQSFullAccess",
        "SecretsManagerReadWrite",
        "AWSLambdaSQSQueueExecutionRole",
    }
    for name, function in functions(template).items():
        managed = {p for p in function["Properties"]["Policies"] if isinstance(p, str)}
        assert not managed & broad, name
        assert not any(
            e.get("Type") == "SQS" for e in function["Properties"].get("Events", {}).values()
        )


def test_bucket_queue_and_outputs(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    bucket = resources["RawBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    prefixes = {
        r["Prefix"]
        for r in bucket["LifecycleConfiguration"]["Rules"]
        if isinstance(r["Prefix"], str)
    }
    assert {"rejected/", "reports/", "quarantine/"} <= prefixes
    (tls,) = resources["RawBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    notification = bucket["NotificationConfiguration"]["QueueConfigurations"][0]
    assert notification["Filter"]["S3Key"]["Rules"] == [
        {"Name": "prefix", "Value": {"Ref": "IncomingPrefix"}}
    ]
    queue = resources["IngestQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "IngestDeadLetterQueue.Arn"}
    mapping = resources["IngestEventSource"]["Properties"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "ReservedConcurrentExecutions" in resources["IngestFunction"]["Properties"]
    assert (
        resources["ReadingsRoute"]["Properties"]["RouteKey"] == "GET /devices/{device_id}/readings"
    )
    assert {"BucketName", "ApiUrl", "DeadLetterQueueUrl"} <= set(template["Outputs"])
    alarms = [r for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert {a["Properties"]["MetricName"] for a in alarms} >= {
        "ApproximateNumberOfMessagesVisible",
        "Errors",
        "Throttles",
    }
