"""Imports flow one way (style convention 1): parse every module's imports and fail on a wrong edge."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "semc"

#: (module path pattern, forbidden import prefixes, reason)
RULES = [
    ("*/calc/*", ("django", "dask", "distributed", "dask_jobqueue", "semc.models", "semc.loop", "semc.cluster",
                  "semc.web", "matplotlib"), "calc is pure: arrays and dataclasses, no ORM, no cluster"),
    ("*/calc/external*", ("semc.base.io", "mrcfile", "tifffile"), "command builders/parsers never read movies"),
    ("base/io/*", ("django", "dask", "distributed", "semc.models"), "I/O is below the ORM and the cluster"),
    ("simulation/physics*", ("django", "semc.models"), "simulation physics is pure"),
]
CLUSTER_ONLY = ("distributed", "dask_jobqueue")
CLUSTER_MODULES = {"loop.py", "cluster.py"}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_respect_the_layers(path):
    relative = path.relative_to(PACKAGE)
    imports = _imports(path)
    for pattern, forbidden, reason in RULES:
        if _matches(relative, pattern):
            bad = sorted(i for i in imports if i.startswith(forbidden))
            assert not bad, f"{relative} imports {bad}: {reason}"
    if relative.name not in CLUSTER_MODULES:
        bad = sorted(i for i in imports if i.split(".")[0] in CLUSTER_ONLY)
        assert not bad, f"{relative} imports {bad}: only loop.py and cluster.py talk to the cluster"


def _matches(relative: Path, pattern: str) -> bool:
    """Match a pattern against any suffix of the path (``*/calc/*`` also matches nested calc packages)."""
    parts = relative.parts
    return any(Path(*parts[i:]).match(pattern) for i in range(len(parts)))
