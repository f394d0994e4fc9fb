"""What is published and how: .funcignore keeps exactly what runs, azure.yaml names real paths and
the app azd publishes to, host.json's log categories are the host's own and nothing is sent twice."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

from sandbox.host import discover_functions
from tests.deployed_settings import import_function_app
from tests.infra.bicep import INFRA, literal, lookup, parse, resources

# function_app checks the settings in the environment as it is imported, as the host imports it.
function_app = import_function_app()

ROOT = INFRA.parent
RUNS_IN_AZURE = {"function_app.py", "host.json", "requirements.txt", "functions", "shared"}


def published(root: Path, funcignore: str) -> set[str]:
    """Top-level names left in the package by a .funcignore (gitignore patterns; ours are top-level)."""
    patterns = [p.strip().rstrip("/") for p in funcignore.splitlines() if p.strip() and not p.startswith("#")]
    return {p.name for p in root.iterdir() if not any(fnmatch.fnmatch(p.name, pattern) for pattern in patterns)}


def imported_from_the_project() -> set[str]:
    """Top-level project paths the function app imports (function_app is imported above, so all of it)."""
    names = set()
    for module in list(sys.modules.values()):
        path = Path(getattr(module, "__file__", None) or "/").resolve()
        if ROOT in path.parents and ".venv" not in path.parts:
            names.add(path.relative_to(ROOT).parts[0])
    return names


def test_funcignore_keeps_what_runs_and_nothing_else() -> None:
    assert function_app.app is not None
    funcignore = (ROOT / ".funcignore").read_text()
    assert published(ROOT, funcignore) == RUNS_IN_AZURE
    # what the app imports at runtime is in the package; the test modules themselves are not published
    runtime = {n for n in imported_from_the_project() if n not in ("tests", "sandbox")}
    assert runtime <= RUNS_IN_AZURE, runtime - RUNS_IN_AZURE


def test_the_funcignore_check_sees_a_missing_package_part() -> None:
    funcignore = (ROOT / ".funcignore").read_text()
    assert published(ROOT, funcignore + "shared\n") != RUNS_IN_AZURE
    assert published(ROOT, funcignore.replace("\ntests\n", "\n")) != RUNS_IN_AZURE


def simple_yaml(source: str) -> dict[str, object]:
    """Enough YAML for azure.yaml: nested `key: value` maps by two-space indentation."""
    root: dict[str, object] = {}
    stack: list[tuple[int, dict[str, object]]] = [(-1, root)]
    for line in source.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        key, _, value = line.strip().partition(":")
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        if value.strip():
            parent[key] = value.strip()
        else:
            child: dict[str, object] = {}
            parent[key] = child
            stack.append((indent, child))
    return root


def azure_yaml_problems(source: str) -> list[str]:
    doc = simple_yaml(source)
    problems = []
    infra = doc.get("infra")
    if not isinstance(infra, dict) or infra.get("provider") != "bicep":
        return ["no bicep infra"]
    template = ROOT / str(infra.get("path", "infra")) / f"{infra.get('module', 'main')}.bicep"
    if not template.is_file():
        problems.append(f"{template.relative_to(ROOT)} does not exist")
    elif not template.with_suffix(".parameters.json").is_file():
        problems.append(f"{template.with_suffix('.parameters.json').relative_to(ROOT)} does not exist")
    services = doc.get("services")
    if not isinstance(services, dict) or not services:
        return [*problems, "no service"]
    tags = {
        literal(lookup(r.body, "tags", "azd-service-name"))
        for path in INFRA.rglob("*.bicep")
        for r in resources(parse(path.read_bytes()))
        if r.type == "Microsoft.Web/sites"
    }
    for name, service in services.items():
        assert isinstance(service, dict)
        project = ROOT / str(service.get("project", ""))
        if not (project / "function_app.py").is_file() or not (project / "host.json").is_file():
            problems.append(f"service {name}: {service.get('project')} is not the function app")
        if service.get("host") != "function" or service.get("language") != "python":
            problems.append(f"service {name}: not a Python function")
        if name not in tags:
            problems.append(f"service {name}: no Microsoft.Web/sites tagged azd-service-name: {name}")
    return problems


def test_azure_yaml_names_existing_paths_and_the_tagged_app() -> None:
    assert azure_yaml_problems((ROOT / "azure.yaml").read_text()) == []


def test_the_azure_yaml_check_sees_wrong_paths() -> None:
    source = (ROOT / "azure.yaml").read_text()
    assert azure_yaml_problems(source.replace("path: infra", "path: infrastructure"))
    assert azure_yaml_problems(source.replace("project: .", "project: functions"))
    assert azure_yaml_problems(source.replace("  api:", "  web:"))


def host_categories() -> dict[str, str]:
    return dict(json.loads((ROOT / "host.json").read_text())["logging"]["logLevel"])


def category_problems(categories: dict[str, str]) -> list[str]:
    """Categories the Functions host writes (learn.microsoft.com, configure monitoring), and the app's
    own records sent once: the OpenTelemetry distro exports the `projops` logger, so each function's
    user logs (Function.<name>.User) are off on the host's Application Insights path."""
    functions = {str(f.get_function_name()) for f in discover_functions(function_app.app)}
    known = {"default", "Function", "Host", "Host.Results", "Host.Aggregator", "Host.Executor", "Host.Startup"}
    known |= {"Microsoft", "Worker", "Azure.Core", "Azure.Messaging.ServiceBus"}
    known |= {f"Function.{f}" for f in functions} | {f"Function.{f}.User" for f in functions}
    problems = [f"{c}: not a host category" for c in categories if c not in known]
    problems += [
        f"Function.{f}.User: sent twice" for f in sorted(functions) if categories.get(f"Function.{f}.User") != "None"
    ]
    return problems


def test_host_log_categories_are_real_and_nothing_is_exported_twice() -> None:
    assert category_problems(host_categories()) == []
    assert host_categories()["Host.Results"] == "Information"  # the requests table the alerts query


def test_the_category_check_sees_a_made_up_category_and_a_duplicate() -> None:
    categories = host_categories()
    assert category_problems({**categories, "projops": "Information"}) == ["projops: not a host category"]
    assert category_problems({**categories, "Function.flow_actuals.User": "Information"}) == [
        "Function.flow_actuals.User: sent twice"
    ]
