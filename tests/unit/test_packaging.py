"""The service ships alone: its dependencies, its imports and its lock hold no harness.

``pip install .`` must install what ``importer/`` needs and nothing of the proving ground
(Locust, pandas, matplotlib, moto…), which lives in the ``lab`` extra; every third-party
package a part imports is one that part declares (not one that happens to come along).
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
HARNESS_PACKAGES = ("lab", "chaos", "loadtests", "reports")
# Distributions that only the proving ground needs; none may reach the service's install.
HARNESS_DISTRIBUTIONS = {"locust", "pandas", "matplotlib", "moto", "gevent", "psutil", "toxiproxy-python"}


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _core() -> set[str]:
    return {_name(r) for r in PYPROJECT["project"]["dependencies"]}


def _extra(name: str) -> set[str]:
    return {_name(r) for r in PYPROJECT["project"]["optional-dependencies"][name]}


def _imports(package: str) -> Iterator[tuple[Path, str]]:
    """(file, top-level module) of every import in ``package``, except type-checking-only ones."""
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        skipped: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                yield path, node.module.split(".")[0]


def _undeclared(package: str, declared: set[str]) -> list[str]:
    own = {"importer", *HARNESS_PACKAGES}
    owners = importlib.metadata.packages_distributions()
    problems = []
    for path, module in _imports(package):
        if module in sys.stdlib_module_names or module in own:
            continue
        distributions = {_name(d) for d in owners.get(module, [])}
        if not distributions & declared:
            problems.append(f"{path.relative_to(ROOT)}: imports {module} ({sorted(distributions)}), not declared")
    return problems


def test_the_core_dependencies_hold_no_harness_package() -> None:
    assert not _core() & HARNESS_DISTRIBUTIONS
    assert _extra("lab") >= HARNESS_DISTRIBUTIONS


def test_dev_is_the_lab_plus_the_test_tools() -> None:
    assert "product-importer" in _extra("dev")
    assert any(r.startswith("product-importer[lab]") for r in PYPROJECT["project"]["optional-dependencies"]["dev"])


def test_no_unused_extra_of_limits() -> None:
    """limits[async-redis] pulls coredis; both our storages use redis-py."""
    limits = [r for r in PYPROJECT["project"]["dependencies"] if _name(r) == "limits"]
    assert limits and "[" not in limits[0]


def test_the_importer_imports_nothing_of_the_harness() -> None:
    found = [f"{p.relative_to(ROOT)}: {m}" for p, m in _imports("importer") if m in HARNESS_PACKAGES]
    assert not found


def test_the_importer_imports_only_its_declared_dependencies() -> None:
    assert not _undeclared("importer", _core())


@pytest.mark.parametrize("package", HARNESS_PACKAGES)
def test_the_harness_imports_only_what_the_core_and_the_lab_extra_declare(package: str) -> None:
    assert not _undeclared(package, _core() | _extra("lab"))


def test_importing_every_importer_module_loads_no_harness_module() -> None:
    """At run time too, through every transitive import: a fresh interpreter imports all of
    ``importer`` and must not have loaded the harness or its libraries."""
    script = """
import importlib, json, pkgutil, sys
import importer
for info in pkgutil.walk_packages(importer.__path__, "importer."):
    importlib.import_module(info.name)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    forbidden = {*HARNESS_PACKAGES, "locust", "pandas", "matplotlib", "moto", "gevent", "psutil", "toxiproxy"}
    assert not loaded & forbidden


def _locked(path: Path) -> set[str]:
    return {_name(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", path.read_text(), re.M)}


def test_the_service_lock_holds_no_harness_package_and_agrees_with_the_dev_lock() -> None:
    service = ROOT / "requirements" / "importer.txt"
    dev = ROOT / "requirements" / "dev.txt"
    assert not _locked(service) & HARNESS_DISTRIBUTIONS
    assert _core() <= _locked(service)
    assert (_core() | _extra("lab")) <= _locked(ROOT / "requirements" / "lab.txt")

    def pins(path: Path) -> set[str]:
        return set(re.findall(r"^[A-Za-z0-9][A-Za-z0-9._-]*==\S+", path.read_text(), re.M))

    assert pins(service) <= pins(dev), "importer.txt pins a version dev.txt does not: run scripts/lock.sh"


def test_the_dev_lock_satisfies_every_declared_requirement() -> None:
    """A dependency added to pyproject.toml, or a bound changed, without `scripts/lock.sh` fails
    here rather than on a fresh machine (setup.sh installs the lock, and the project --no-deps)."""
    text = (ROOT / "requirements" / "dev.txt").read_text()
    versions = {_name(m.group(1)): m.group(2) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", text, re.M)}
    optional = PYPROJECT["project"]["optional-dependencies"]
    problems = []
    for raw in [*PYPROJECT["project"]["dependencies"], *optional["lab"], *optional["dev"]]:
        requirement = Requirement(raw)
        name = _name(requirement.name)
        if name == "product-importer":
            continue
        if name not in versions:
            problems.append(f"{raw}: not in the lock")
        elif not requirement.specifier.contains(versions[name], prereleases=True):
            problems.append(f"{raw}: the lock has {versions[name]}")
    assert not problems, "run scripts/lock.sh: " + "; ".join(problems)
