"""The deployment files: the Dockerfile is well-formed and safe, and docs/deploy-aws.md's IAM policy grants
exactly the AWS APIs the code calls, each action justified in the doc.

Docker is not available here, so the image is not built: its instructions are read and checked. The AWS
calls are found in the source by the names botocore gives every operation of the services the code uses
(the real service models, not a hand-kept list), so a new boto3 call without its IAM action fails here.
"""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from pathlib import Path

import botocore.session
import httpx
import yaml
from botocore import xform_name

from genai_chatbot.api.app import create_app
from genai_chatbot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "genai_chatbot"
DOC = ROOT / "docs" / "deploy-aws.md"

#: boto3 service name: IAM action prefix.
SERVICES = {
    "secretsmanager": "secretsmanager",
    "bedrock": "bedrock",
    "bedrock-runtime": "bedrock",
    "sagemaker": "sagemaker",
    "sagemaker-runtime": "sagemaker",
    "sts": "sts",
    "dynamodb": "dynamodb",
}
#: Operations authorised by another action's name.
AUTHORISED_AS = {"Converse": "InvokeModel", "ConverseStream": "InvokeModelWithResponseStream"}
#: IAM actions that a part of a call needs: a `ConditionCheck` in a TransactWriteItems has its own action.
PARTS = {"ConditionCheck": "dynamodb:ConditionCheckItem"}
#: How the code names the objects it calls AWS through.
AWS_RECEIVER = re.compile(r"client|^(sts|bedrock|c)$")


@cache
def aws_operations() -> dict[str, set[str]]:
    """Every operation of `SERVICES`, by boto3 method name: the IAM actions it needs (one per service)."""
    session = botocore.session.get_session()
    table: dict[str, set[str]] = {}
    for service, prefix in SERVICES.items():
        for operation in session.get_service_model(service).operation_names:
            table.setdefault(xform_name(operation), set()).add(f"{prefix}:{AUTHORISED_AS.get(operation, operation)}")
    for service, prefix in SERVICES.items():
        try:
            waiters = session.get_waiter_model(service)
        except Exception:  # services without waiters
            continue
        for name in waiters.waiter_names:
            table.setdefault(f"waiter:{xform_name(name)}", set()).add(f"{prefix}:{waiters.get_waiter(name).operation}")
    return table


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def aws_calls(tree: ast.AST) -> set[str]:
    """The IAM actions of the boto3 calls in `tree` (an alternative per name shared by two services)."""
    found: set[str] = set()
    table = aws_operations()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in PARTS:
            found.add(PARTS[node.value])
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if not AWS_RECEIVER.search(ast.unparse(node.func.value)):
            continue
        name = node.func.attr
        if name in ("get_paginator", "get_waiter") and node.args and isinstance(node.args[0], ast.Constant):
            name = ("waiter:" if name == "get_waiter" else "") + str(node.args[0].value)
        found |= {" | ".join(sorted(table[name]))} if name in table else set()
    return found


def called_actions(server_only: bool) -> set[str]:
    """AWS actions called by the code; `server_only`: only modules `serve` can import (not the CLI's own)."""
    trees = {module_name(path): ast.parse(path.read_text()) for path in SOURCE.rglob("*.py")}
    if server_only:
        operator = ("genai_chatbot.cli", "genai_chatbot.hosting", "genai_chatbot.__main__")
        wanted = [m for m in trees if not m.startswith(operator)]
        reached: set[str] = set()
        while wanted:
            module = wanted.pop()
            if module in reached or module not in trees:
                continue
            reached.add(module)
            for node in ast.walk(trees[module]):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("genai_chatbot"):
                    wanted += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        trees = {m: t for m, t in trees.items() if m in reached}
    return set().union(*(aws_calls(tree) for tree in trees.values()))


def doc_policies() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    parsed = [json.loads(block) for block in blocks]  # every JSON block of the doc parses
    return [p for p in parsed if isinstance(p, dict) and "Statement" in p]


def granted(policies: list[dict[str, object]]) -> set[str]:
    actions: set[str] = set()
    for policy in policies:
        assert policy["Version"] == "2012-10-17"
        for statement in policy["Statement"]:  # type: ignore[attr-defined]
            assert statement["Effect"] == "Allow" and statement["Sid"] and statement["Resource"]
            listed = statement["Action"]
            actions |= set([listed] if isinstance(listed, str) else listed)
    return actions


def test_the_iam_policy_grants_every_aws_action_the_server_calls() -> None:
    actions = granted(doc_policies())
    for needed in called_actions(server_only=True):
        alternatives = needed.split(" | ")
        assert any(a in actions for a in alternatives), f"the policy in {DOC.name} lacks {needed}"


def test_the_iam_policy_grants_nothing_the_code_does_not_call_and_justifies_each_action() -> None:
    called = {a for needed in called_actions(server_only=False) for a in needed.split(" | ")}
    actions = granted(doc_policies())
    if not list(SOURCE.glob("chat/dynamodb_*.py")):  # the DynamoDB store lands separately
        actions = {a for a in actions if not a.startswith("dynamodb:")}
    assert actions - called == set(), "granted but never called"
    text = DOC.read_text()
    for action in actions:
        assert re.search(rf"^\| `{re.escape(action)}` \|", text, flags=re.M), f"{action} is not justified"


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined), as (INSTRUCTION, arguments)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_the_dockerfile_builds_in_stages_and_runs_as_a_user_with_keys_required_and_a_health_check() -> None:
    instructions = dockerfile()
    known = {
        "FROM",
        "ARG",
        "ENV",
        "RUN",
        "COPY",
        "WORKDIR",
        "USER",
        "VOLUME",
        "EXPOSE",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
    }
    assert {kind for kind, _ in instructions} <= known
    stages = [i for i, (kind, _) in enumerate(instructions) if kind == "FROM"]
    assert len(stages) == 2 and all("-slim" in instructions[i][1] for i in stages)
    final = instructions[stages[-1] :]
    users = [args for kind, args in final if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    env = " ".join(args for kind, args in final if kind == "ENV")
    assert "GENAI_CHATBOT_HOST=0.0.0.0" in env and "GENAI_CHATBOT_AUTH=api-keys" in env
    assert any(kind == "HEALTHCHECK" and "/healthz" in args for kind, args in final)
    assert ("ARG", "EMBEDDED_MODEL=false") in instructions
    assert json.loads(next(args for kind, args in final if kind == "ENTRYPOINT")) == ["genai-chatbot"]
    ignored = (ROOT / ".dockerignore").read_text()
    for kind, args in instructions:
        if kind == "COPY" and not args.startswith("--from"):
            for source in args.split()[:-1]:
                assert (ROOT / source).exists(), source
                assert f"!{source.rstrip('/')}" in ignored, f"{source} is excluded by .dockerignore"


def test_the_compose_file_runs_the_server_on_postgres_with_keys_required() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    chatbot = compose["services"]["chatbot"]
    assert chatbot["environment"]["GENAI_CHATBOT_DATABASE_URL"].startswith("postgresql://")
    assert chatbot["environment"]["GENAI_CHATBOT_AUTH"] == "api-keys"
    assert chatbot["depends_on"]["postgres"]["condition"] == "service_healthy"


async def test_healthz_answers_a_load_balancer_probe_by_address_while_other_paths_check_the_host(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(data_dir=tmp_path, host="0.0.0.0", auth="api-keys"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.3.7:8000") as probe:
        assert (await probe.get("/healthz")).json()["status"] == "ok"
        refused = await probe.get("/api/models")
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "host_not_allowed")
