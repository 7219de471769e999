"""template.yaml as CloudFormation sees it: the SAM transform, then parameters resolved.

`transformed()` runs the real SAM translator (the ``aws-sam-translator`` package that
``sam deploy`` uses) on the template. `Stack` then evaluates what CloudFormation would for one
set of parameter values: the Rules (is this set accepted?), the Conditions (which resources
exist?) and the intrinsic functions in the properties. Names that only exist after creation
(a resource's Ref, a GetAtt) become placeholders such as ``<Database.Endpoint.Address>``.
"""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
NO_VALUE = object()  # AWS::NoValue: the property is dropped
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "iotpipe",
    "AWS::URLSuffix": "amazonaws.com",
}
REQUIRED = {"VpcId": "vpc-0123", "PrivateSubnetIds": "subnet-a,subnet-b"}


class _PolicyLoader:
    """The managed policies the template names (the translator would ask IAM)."""

    def load(self) -> dict[str, str]:
        return {
            "AWSLambdaVPCAccessExecutionRole": (
                "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
            )
        }


@cache
def transformed() -> dict[str, Any]:
    """Return the template after the SAM transform (local CodeUris stand in as S3 URIs)."""
    import os

    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    doc = yaml_parse(TEMPLATE.read_text(encoding="utf-8"))
    for resource in doc["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/package.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", PSEUDO["AWS::Region"])
    result: dict[str, Any] = transform(doc, dict(REQUIRED), _PolicyLoader())
    return result


class Stack:
    """One set of parameter values applied to the transformed template."""

    def __init__(self, **values: str) -> None:
        self.doc = copy.deepcopy(transformed())
        params = self.doc["Parameters"]
        unknown = set(values) - set(params)
        assert not unknown, unknown
        self.params = {
            name: str(values.get(name, REQUIRED.get(name, spec.get("Default", ""))))
            for name, spec in params.items()
        }
        self._conditions: dict[str, bool] = {}

    # ---------------------------------------------------------------- rules and conditions
    def accepted(self) -> bool:
        """Tell whether CloudFormation's Rules let this parameter set through."""
        for rule in self.doc.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.test(rule["RuleCondition"]):
                continue
            if not all(self.test(a["Assert"]) for a in rule["Assertions"]):
                return False
        return True

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = self.test(self.doc["Conditions"][name])
        return self._conditions[name]

    def test(self, expr: Any) -> bool:
        (fn, arg), *_ = expr.items()
        if fn == "Fn::Equals":
            left, right = (self.value(a) for a in arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not self.test(arg[0])
        if fn == "Fn::And":
            return all(self.test(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.test(a) for a in arg)
        if fn == "Condition":
            return self.condition(arg)
        raise AssertionError(f"unexpected condition function {fn}")

    # ---------------------------------------------------------------- values
    def value(self, node: Any) -> Any:  # noqa: C901, PLR0911 (one branch per intrinsic)
        """Resolve a template node: what CloudFormation would pass to the resource."""
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), *_ = node.items()
            if fn == "Ref":
                return self._ref(arg)
            if fn == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else arg.split(".", 1)
                return att(parts[0], parts[1])
            if fn == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                local = {k: self.value(v) for k, v in names.items()}
                return re.sub(
                    r"\$\{([^}]+)\}",
                    lambda m: str(local[m[1]] if m[1] in local else self._sub_name(m[1])),
                    text,
                )
            if fn == "Fn::Split":
                return str(self.value(arg[1])).split(arg[0])
            if fn == "Fn::Select":
                return self.value(arg[1])[int(arg[0])]
            if fn == "Fn::Join":
                return arg[0].join(str(v) for v in self.value(arg[1]))
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            spec = self.doc["Parameters"][name]
            if spec["Type"].startswith("List<") or spec["Type"] == "CommaDelimitedList":
                return self.params[name].split(",")
            return self.params[name]
        assert name in self.doc["Resources"], f"Ref to nothing: {name}"
        return f"<{name}>"

    def _sub_name(self, name: str) -> str:
        if "." in name:
            return f"<{name}>"
        return str(self._ref(name))

    # ---------------------------------------------------------------- what exists
    def resources(self) -> dict[str, dict[str, Any]]:
        """Return the resources this parameter set creates, with their properties resolved."""
        found = {}
        for name, resource in self.doc["Resources"].items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            found[name] = {
                "Type": resource["Type"],
                "Properties": self.value(resource.get("Properties", {})),
            }
        return found

    def outputs(self) -> dict[str, Any]:
        return {
            name: self.value(out["Value"])
            for name, out in self.doc["Outputs"].items()
            if "Condition" not in out or self.condition(out["Condition"])
        }

    def statements(self, role: str) -> list[dict[str, Any]]:
        """Return the IAM statements of a role (a function's is ``<Function>Role``)."""
        props = self.resources()[role]["Properties"]
        return [s for p in props.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def att(resource: str, name: str) -> str:
    """Return the placeholder of ``!GetAtt resource.name`` (ARNs keep an ARN's shape)."""
    if name.endswith("Arn"):
        return f"arn:aws:test:us-east-1:123456789012:{resource}:<{resource}.{name}>"
    return f"<{resource}.{name}>"


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
