"""template.yaml after the SAM transform: what a deployment gets, for every parameter set.

Each test names the production concern it pins (docs/deploy.md explains them): concurrency,
private networking, existing-database mode, rotation, TLS, engine and runtime versions,
connection storms, alarms, database users, the schema step, secrets at runtime, conventions.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from iotpipe import bootstrap, config
from tests.unit.cfn import ROOT, Stack, att, listed, transformed

FUNCTIONS = {
    "IngestFunction": "iotpipe.handlers.ingest.handler",
    "RetrieveFunction": "iotpipe.handlers.retrieve.handler",
    "AdminFunction": "iotpipe.handlers.admin.handler",
}
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234"


def every_parameter_set() -> list[dict[str, str]]:
    """Every combination of the parameters that change which resources and grants exist."""
    choices = {
        "DatabaseMode": ["new", "existing"],
        "ExistingDbSecretArn": ["", ARN],
        "ExistingDbHost": ["", "db.example.internal"],
        "ExistingDbSecretKmsKeyArn": ["", KEY],
        "UseRdsProxy": ["true", "false"],
        "ProxyIamAuth": ["true", "false"],
        "CreateS3Endpoint": ["true", "false"],
        "RouteTableIds": ["", "rtb-1,rtb-2"],
    }
    return [
        dict(zip(choices, combo, strict=True)) for combo in itertools.product(*choices.values())
    ]


def env_of(stack: Stack, function: str) -> dict[str, Any]:
    props = stack.resources()[function]["Properties"]
    variables: dict[str, Any] = props["Environment"]["Variables"]
    return variables


def test_handlers_exist() -> None:
    resources = transformed()["Resources"]
    handlers = {
        name: r["Properties"]["Handler"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert handlers == FUNCTIONS
    for path in handlers.values():
        module, attribute = path.rsplit(".", 1)
        assert callable(getattr(importlib.import_module(module), attribute))


def test_every_env_var_a_function_reads_is_set() -> None:
    stack = Stack()
    known = {v for k, v in vars(config).items() if k.startswith("ENV_")}
    needed = {
        "IngestFunction": config.INGEST_LAMBDA_ENV,
        "RetrieveFunction": config.RETRIEVE_LAMBDA_ENV,
        "AdminFunction": config.ADMIN_LAMBDA_ENV,
    }
    for name in FUNCTIONS:
        env = env_of(stack, name)
        assert set(needed[name]) <= set(env), (name, set(needed[name]) - set(env))
        assert {k for k in env if k.startswith("IOTPIPE_")} <= known, name  # no misspelt names


# ---------------------------------------------------------------- 3: no Resource "" can arise
def test_rules_refuse_an_existing_database_without_secret_or_host() -> None:
    refused = {
        (p["ExistingDbSecretArn"], p["ExistingDbHost"])
        for p in every_parameter_set()
        if p["DatabaseMode"] == "existing" and not Stack(**p).accepted()
    }
    assert ("", "db.example.internal") in refused
    assert (ARN, "") in refused
    assert ("", "") in refused
    assert Stack(DatabaseMode="existing", ExistingDbSecretArn=ARN, ExistingDbHost="h").accepted()
    assert not Stack(CreateS3Endpoint="true", RouteTableIds="").accepted()
    assert not Stack(ProxyIamAuth="true", UseRdsProxy="false").accepted()


def _empty_values(node: Any, path: str = "") -> list[str]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _empty_values(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _empty_values(v, f"{path}[{i}]")]
    return [path] if node == "" else []


def test_no_accepted_parameter_set_yields_an_empty_arn_host_or_grant() -> None:
    accepted = 0
    for params in every_parameter_set():
        stack = Stack(**params)
        if not stack.accepted():
            continue
        accepted += 1
        resources = stack.resources()
        for name, resource in resources.items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for statement in stack.statements(name):
                for target in listed(statement["Resource"]):
                    assert target not in ("", "*"), (params, name, statement)
        for function in FUNCTIONS:
            env = env_of(stack, function)
            assert not _empty_values(env), (params, function, _empty_values(env))
        admin = {s["Sid"]: s for s in stack.statements("AdminFunctionRole")}
        wants_key = params["DatabaseMode"] == "existing" and params["ExistingDbSecretKmsKeyArn"]
        assert ("DecryptExistingSecret" in admin) == bool(wants_key), params
        if wants_key:
            assert admin["DecryptExistingSecret"]["Resource"] == KEY
        assert not _empty_values(stack.outputs()), params
    assert accepted >= 40


# ---------------------------------------------------------------- 1: concurrency that protects
def test_loads_are_capped_by_the_event_source_not_by_reserved_concurrency() -> None:
    stack = Stack()
    resources = stack.resources()
    mapping = resources["IngestEventSource"]["Properties"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == "4"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    for function in FUNCTIONS:
        assert "ReservedConcurrentExecutions" not in resources[function]["Properties"], function
    reserved = Stack(IngestReservedConcurrency="3", RetrieveReservedConcurrency="20").resources()
    assert reserved["IngestFunction"]["Properties"]["ReservedConcurrentExecutions"] == "3"
    assert reserved["RetrieveFunction"]["Properties"]["ReservedConcurrentExecutions"] == "20"
    assert int(transformed()["Parameters"]["IngestMaxConcurrency"]["MinValue"]) == 2
    # The queue hides a message for six times the longest the function may run.
    timeout_max = int(transformed()["Parameters"]["IngestTimeoutSeconds"]["MaxValue"])
    assert int(resources["IngestQueue"]["Properties"]["VisibilityTimeout"]) >= 6 * timeout_max
    redrive = resources["IngestQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == att("IngestDeadLetterQueue", "Arn")


# ---------------------------------------------------------------- 2: networking that cannot hang
def test_private_routes_to_s3_and_secrets_manager_are_offered() -> None:
    assert "S3GatewayEndpoint" not in Stack().resources()
    resources = Stack(
        CreateS3Endpoint="true", RouteTableIds="rtb-1,rtb-2", CreateSecretsManagerEndpoint="true"
    ).resources()
    s3 = resources["S3GatewayEndpoint"]["Properties"]
    assert s3["VpcEndpointType"] == "Gateway"
    assert s3["ServiceName"] == "com.amazonaws.us-east-1.s3"
    assert s3["RouteTableIds"] == ["rtb-1", "rtb-2"]
    sm = resources["SecretsManagerInterfaceEndpoint"]["Properties"]
    assert sm["ServiceName"] == "com.amazonaws.us-east-1.secretsmanager"
    assert sm["PrivateDnsEnabled"] is True
    assert sm["SubnetIds"] == ["subnet-a", "subnet-b"]
    (ingress,) = resources["EndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == "<FunctionSecurityGroup>"


def test_aws_clients_fail_fast_without_a_route() -> None:
    for service in ("s3", "secretsmanager", "rds"):
        cfg = bootstrap.aws_config(service)
        assert cfg.connect_timeout <= 5
        assert cfg.read_timeout <= 30
        assert cfg.retries == {"max_attempts": 3, "mode": "standard"}
    # Worst case without a route: every attempt waits for its connect timeout, and that
    # still leaves the retrieval function (29 s, the API's limit) time to answer a 500.
    assert bootstrap.AWS_CONNECT_TIMEOUT_SECONDS * bootstrap.AWS_MAX_ATTEMPTS < 29 / 2


# ---------------------------------------------------------------- 4, 5, 6: rotation, TLS, versions
def test_tls_is_required_and_verified_on_every_path_to_the_database() -> None:
    resources = Stack().resources()
    assert resources["DatabaseProxy"]["Properties"]["RequireTLS"] is True
    params = resources["DatabaseParameters"]["Properties"]
    assert params["Parameters"]["require_secure_transport"] == "1"
    assert resources["Database"]["Properties"]["DBParameterGroupName"] == "<DatabaseParameters>"
    for function in FUNCTIONS:
        assert env_of(Stack(), function)["IOTPIPE_DB_SSL_CA"] == "rds"
    bundle = ROOT / "src" / "iotpipe" / "certs" / "rds-ca-bundle.pem"
    assert bundle.read_text().count("BEGIN CERTIFICATE") >= 20
    from iotpipe.storage.mysql import rds_ca_bundle

    shipped = Path(rds_ca_bundle())
    assert shipped.parts[-3:] == ("iotpipe", "certs", "rds-ca-bundle.pem")
    assert shipped.read_bytes() == bundle.read_bytes()


def test_engine_and_runtime_are_in_standard_support() -> None:
    template = transformed()
    assert template["Parameters"]["DbEngineVersion"]["Default"].startswith("8.4")
    db = Stack().resources()["Database"]["Properties"]
    assert db["EngineVersion"].startswith("8.4")
    assert db["EngineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    assert Stack().resources()["DatabaseParameters"]["Properties"]["Family"] == "mysql8.4"
    makefile = (ROOT / "src" / "Makefile").read_text()
    (built_for,) = re.findall(r"--python-version (\d+\.\d+)", makefile)
    for function in FUNCTIONS:
        runtime = template["Resources"][function]["Properties"]["Runtime"]
        assert runtime in ("python3.12", "python3.13"), function
        assert runtime == f"python{built_for}", function


def test_the_proxy_is_on_for_a_new_database_and_iam_auth_is_an_option() -> None:
    assert transformed()["Parameters"]["UseRdsProxy"]["Default"] == "true"
    stack = Stack()
    assert env_of(stack, "IngestFunction")["IOTPIPE_DB_HOST"] == "<DatabaseProxy.Endpoint>"
    assert env_of(stack, "RetrieveFunction")["IOTPIPE_DB_HOST"] == "<DatabaseProxy.Endpoint>"
    # The admin step talks to the instance itself (the proxy knows only the two users).
    assert env_of(stack, "AdminFunction")["IOTPIPE_DB_HOST"] == "<Database.Endpoint.Address>"
    iam = Stack(ProxyIamAuth="true")
    auth = iam.resources()["DatabaseProxy"]["Properties"]["Auth"]
    assert {a["IAMAuth"] for a in auth} == {"REQUIRED"}
    for function, user in (
        ("IngestFunction", "iotpipe_ingest"),
        ("RetrieveFunction", "iotpipe_read"),
    ):
        env = env_of(iam, function)
        assert env["IOTPIPE_DB_IAM_USER"] == user
        assert "IOTPIPE_DB_SECRET_ARN" not in env
        grant = {s["Sid"]: s for s in iam.statements(f"{function}Role")}["DatabaseUser"]
        assert grant["Action"] == "rds-db:connect"
        assert re.fullmatch(
            rf"arn:aws:rds-db:us-east-1:123456789012:dbuser:.+/{user}", grant["Resource"]
        )


# ---------------------------------------------------------------- 8: alarms that can fire
def test_alarms_watch_what_failures_are_reported_as() -> None:
    alarms = {
        r["Properties"]["MetricName"]: r["Properties"]
        for r in Stack().resources().values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert {"FilesFailed", "QueryErrors", "ApproximateAgeOfOldestMessage", "5xx"} <= set(alarms)
    assert {"ApproximateNumberOfMessagesVisible", "Errors", "Throttles"} <= set(alarms)
    # The custom metrics' namespace and dimension are the handlers' own.
    from iotpipe.handlers import ingest, retrieve

    for metric, handler in (("FilesFailed", ingest), ("QueryErrors", retrieve)):
        alarm = alarms[metric]
        assert alarm["Namespace"] == handler.metrics.namespace
        assert alarm["Dimensions"] == [{"Name": "service", "Value": handler.metrics.service}]
    api = alarms["5xx"]
    assert api["Namespace"] == "AWS/ApiGateway"
    assert {d["Name"] for d in api["Dimensions"]} == {"ApiId", "Stage"}
    assert alarms["ApproximateAgeOfOldestMessage"]["Dimensions"] == [
        {"Name": "QueueName", "Value": "<IngestQueue.QueueName>"}
    ]
    topic = "arn:aws:sns:us-east-1:123456789012:ops"
    for resource in Stack(AlarmTopicArn=topic).resources().values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert resource["Properties"]["AlarmActions"] == [topic]


def test_tracing_is_on_and_the_powertools_tracer_follows_its_parameter() -> None:
    from iotpipe.handlers.tracing import tracing_enabled

    for params in ({}, {"DetailedTracing": "true"}):
        stack = Stack(**params)
        for function in FUNCTIONS:
            assert stack.resources()[function]["Properties"]["TracingConfig"] == {"Mode": "Active"}
            env = {**env_of(stack, function), "AWS_LAMBDA_FUNCTION_NAME": function}
            assert tracing_enabled(env) == bool(params), (params, function)
    assert not tracing_enabled({"POWERTOOLS_TRACE_DISABLED": "false"})  # not in Lambda


# ---------------------------------------------------------------- 9, 10, 11: users, schema, secrets
def test_each_function_holds_only_its_own_database_user() -> None:
    stack = Stack()
    secrets_of = {}
    for function in FUNCTIONS:
        secrets_of[function] = {
            target
            for s in stack.statements(f"{function}Role")
            if "secretsmanager:GetSecretValue" in listed(s["Action"])
            for target in listed(s["Resource"])
        }
    assert secrets_of["IngestFunction"] == {"<IngestUserSecret>"}
    assert secrets_of["RetrieveFunction"] == {"<ReadUserSecret>", "<CursorSecret>"}
    master = att("Database", "MasterUserSecret.SecretArn")
    assert master in secrets_of["AdminFunction"]
    assert env_of(stack, "IngestFunction")["IOTPIPE_DB_SECRET_ARN"] == "<IngestUserSecret>"
    assert env_of(stack, "RetrieveFunction")["IOTPIPE_DB_SECRET_ARN"] == "<ReadUserSecret>"
    assert env_of(stack, "AdminFunction")["IOTPIPE_DB_SECRET_ARN"] == master
    users = {}
    for name in ("IngestUserSecret", "ReadUserSecret"):
        generated = stack.resources()[name]["Properties"]["GenerateSecretString"]
        users[name] = json.loads(generated["SecretStringTemplate"])["username"]
    assert users == {"IngestUserSecret": "iotpipe_ingest", "ReadUserSecret": "iotpipe_read"}
    from iotpipe.storage.mysql import ROLE_PRIVILEGES, USER_NAME

    assert all(USER_NAME.fullmatch(u) for u in users.values())
    assert ROLE_PRIVILEGES["read"] == "SELECT"
    proxy_secrets = {
        a["SecretArn"] for a in stack.resources()["DatabaseProxy"]["Properties"]["Auth"]
    }
    assert proxy_secrets == {"<IngestUserSecret>", "<ReadUserSecret>"}


def test_the_ingest_function_has_room_in_tmp_to_sort_a_file() -> None:
    props = Stack().resources()["IngestFunction"]["Properties"]
    assert props["EphemeralStorage"] == {"Size": "2048"}
    assert Stack(IngestTmpMb="10240").resources()["IngestFunction"]["Properties"][
        "EphemeralStorage"
    ] == {"Size": "10240"}


def test_a_reader_endpoint_serves_reads_with_the_read_users_secret() -> None:
    assert "IOTPIPE_READ_DATABASE_URL" not in env_of(Stack(), "RetrieveFunction")
    stack = Stack(ReadEndpoint="replica.example.internal:3307")
    assert stack.accepted()
    env = env_of(stack, "RetrieveFunction")
    url = "mysql://replica.example.internal:3307/iotpipe?ssl_ca=rds"
    assert env["IOTPIPE_READ_DATABASE_URL"] == url  # no user: credentials from the secret
    assert env["IOTPIPE_DB_SECRET_ARN"] == "<ReadUserSecret>"
    assert "IOTPIPE_READ_DATABASE_URL" not in env_of(stack, "IngestFunction")
    existing = Stack(
        DatabaseMode="existing",
        ExistingDbSecretArn=ARN,
        ExistingDbHost="db.example.internal",
        ExistingDbName="fleet",
        ReadEndpoint="reader.example.internal",
    )
    read_url = env_of(existing, "RetrieveFunction")["IOTPIPE_READ_DATABASE_URL"]
    assert read_url == "mysql://reader.example.internal/fleet?ssl_ca=rds"
    # IAM tokens are granted for the proxy only: a reader needs the password path.
    assert not Stack(ProxyIamAuth="true", ReadEndpoint="replica.example.internal").accepted()
    pattern = re.compile(Stack().doc["Parameters"]["ReadEndpoint"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("a-b.c.rds.amazonaws.com:3306")
    assert not pattern.fullmatch("mysql://user:pw@host/db")


def test_secrets_are_read_at_runtime_never_resolved_into_the_environment() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert "{{resolve:" not in text
    env = env_of(Stack(), "RetrieveFunction")
    assert env["IOTPIPE_CURSOR_SECRET_ARN"] == "<CursorSecret>"
    assert "IOTPIPE_CURSOR_SECRET" not in env


def test_a_missing_object_is_a_404_not_a_403() -> None:
    stack = Stack()
    statements = {s["Sid"]: s for s in stack.statements("IngestFunctionRole")}
    listing = statements["ListRawBucket"]
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"] == "arn:aws:s3:::iotpipe-raw-123456789012-us-east-1"


def test_no_wildcard_resource_for_s3_sqs_or_secrets_and_no_broad_managed_policy() -> None:
    stack = Stack()
    broad = {
        "AmazonS3FullAccess",
        "AmazonS3ReadOnlyAccess",
        "AmazonSQSFullAccess",
        "SecretsManagerReadWrite",
        "AWSLambdaSQSQueueExecutionRole",
    }
    for function in FUNCTIONS:
        role = stack.resources()[f"{function}Role"]["Properties"]
        assert not {arn.rsplit("/", 1)[-1] for arn in role["ManagedPolicyArns"]} & broad
        for statement in stack.statements(f"{function}Role"):
            for target in listed(statement["Resource"]):
                assert target != "*" and not str(target).endswith(":::*"), statement


# ---------------------------------------------------------------- 12: conventions
def test_logs_have_retention_and_the_api_logs_its_requests() -> None:
    resources = Stack(LogRetentionDays="14").resources()
    for function in FUNCTIONS:
        config_ = resources[function]["Properties"]["LoggingConfig"]
        group = config_["LogGroup"].strip("<>")
        assert resources[group]["Properties"]["RetentionInDays"] == "14", function
    stage = resources["ReadingsStage"]["Properties"]
    assert stage["AccessLogSettings"]["DestinationArn"] == att("ApiAccessLogGroup", "Arn")
    assert resources["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == "14"


def test_outputs_name_functions_and_database_endpoints() -> None:
    outputs = Stack().outputs()
    assert {
        "IngestFunctionName",
        "IngestFunctionArn",
        "RetrieveFunctionName",
        "RetrieveFunctionArn",
        "AdminFunctionName",
        "DatabaseEndpoint",
        "DatabaseProxyEndpoint",
        "BucketName",
        "ApiUrl",
        "DeadLetterQueueUrl",
    } <= set(outputs)
    assert outputs["DatabaseProxyEndpoint"] == "<DatabaseProxy.Endpoint>"
    existing = Stack(DatabaseMode="existing", ExistingDbSecretArn=ARN, ExistingDbHost="h")
    assert existing.outputs()["DatabaseEndpoint"] == "h"
    assert "DatabaseProxyEndpoint" not in existing.outputs()


def test_samconfig_has_a_region_and_environments_and_builds_anywhere() -> None:
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env in ("default", "dev", "prod"):
        assert samconfig[env]["global"]["parameters"]["region"], env
        assert "build_in_source" not in samconfig[env].get("build", {}).get("parameters", {})
    # SAM may copy CodeUri to a scratch folder before running make: nothing may reach outside.
    for function in FUNCTIONS:
        assert transformed()["Resources"][function]["Properties"]["Code"]  # transformed
    makefile = (ROOT / "src" / "Makefile").read_text()
    assert "../" not in makefile
    assert {f"build-{f}:" for f in FUNCTIONS} <= set(makefile.split())


@pytest.mark.parametrize("function", ["ingest", "retrieve"])
def test_function_requirements_are_locked_with_hashes(function: str) -> None:
    lock = ROOT / "src" / "requirements" / f"{function}.txt"
    lines = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    assert lines
    for line in lines:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[^\s]+ --hash=sha256:[0-9a-f]{64}", line), line
    names = {line.split("==")[0].lower().replace("_", "-") for line in lines}
    assert "boto3" not in names and "botocore" not in names  # the runtime's own
    assert "aws-xray-sdk" in names  # the Tracer's
    assert ("polars" in names) == (function == "ingest")
    wanted = (ROOT / "deploy" / f"requirements-{function}.in").read_text()
    for requirement in re.findall(r"^([A-Za-z0-9_.-]+)", wanted, flags=re.M):
        assert requirement.lower().replace("_", "-") in names, requirement


def test_every_skipped_checkov_check_is_explained_in_the_deploy_guide() -> None:
    import yaml

    settings = yaml.safe_load((ROOT / ".checkov.yaml").read_text())
    skipped = settings["skip-check"]
    assert skipped
    guide = (ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("## Security checks", 1)[1].split("\n## ", 1)[0]
    for check in skipped:
        assert re.search(rf"^\| `{check}` \| .+ \| .+ \|$", section, flags=re.M), check


def test_every_api_route_reaches_the_retrieval_function() -> None:
    from iotpipe.handlers.retrieve import ROUTES

    resources = Stack().resources()
    routes = {
        r["Properties"]["RouteKey"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    assert routes == set(ROUTES)
    spec_paths = {f"GET {path}" for path in yaml_spec()["paths"]}
    assert spec_paths == set(ROUTES)  # the OpenAPI spec documents exactly these
    permission = resources["ReadingsInvokePermission"]["Properties"]
    assert permission["SourceArn"].endswith("/*/GET/*")


def yaml_spec() -> dict[str, Any]:
    import yaml

    spec: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    assert spec == yaml.safe_load((ROOT / "src" / "iotpipe" / "web" / "openapi.yaml").read_text())
    return spec
