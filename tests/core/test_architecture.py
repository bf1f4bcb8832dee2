"""The layers of docs/architecture.md, enforced: the import contracts in pyproject.toml
(lint-imports) hold, fail when a forbidden import is added, cover every module, and the
paths cron runs never import textual. The wheel installs no generic top-level package."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
INTERFACE = {"__init__", "__main__", "cli", "commands", "tasks", "screens"}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )


def python_files(*folders: str) -> list[Path]:
    """The project's own .py files (not the lab's state, caches or venvs)."""
    found = []
    for folder in folders:
        for top, dirs, files in os.walk(ROOT / folder):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__"))]
            found += [Path(top) / f for f in files if f.endswith(".py")]
    return found


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package (symlinked tasks/ and screens/ copied in) to break."""
    shutil.copytree(
        ROOT / "opskit", tmp_path / "opskit", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_contracts_hold() -> None:
    proc = lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" not in proc.stdout.split("Contracts:")[-1].split("\n")[0].replace(
        "0 broken", ""
    )


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("opskit/tasks/retention.py", "import textual", "tasks (what cron runs)"),
        ("opskit/clients/prometheus.py", "import click", "the core imports"),
        ("opskit/stack.py", "from opskit.tasks import snapshots", "the core imports"),
        ("opskit/screens/alerts.py", "from opskit.commands import common", "screens import"),
        ("opskit/commands/prom.py", "from opskit.screens import app", "commands never import"),
        ("opskit/models.py", "from opskit import stack", "no import cycles"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tree: Path, module: str, line: str, contract: str
) -> None:
    path = tree / module
    text = path.read_text()
    # after the __future__ import, so the module stays valid Python
    head, sep, rest = text.partition("from __future__ import annotations\n")
    path.write_text(f"{head}{sep}{line}  # noqa\n{rest}" if sep else f"{line}\n{text}")
    proc = lint_imports(tree)
    assert proc.returncode == 1, proc.stdout
    broken = proc.stdout.split("Broken contracts")[-1]
    assert contract in broken, proc.stdout


def test_every_module_is_in_a_layer() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    core = next(c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "core")
    classified = {m.removeprefix("opskit.") for m in core["source_modules"]} | INTERFACE
    modules = {p.stem for p in (ROOT / "opskit").iterdir() if p.suffix == ".py" or p.is_dir()}
    modules.discard("__pycache__")
    assert modules - classified == set(), "add new modules to the core contract (pyproject)"


def test_nothing_imports_the_top_level_folders() -> None:
    """tasks/ and screens/ are opskit.tasks / opskit.screens; importing them by their
    folder name would load every module twice."""
    offenders = []
    for path in python_files("opskit", "tasks", "screens", "tests", "bench", "lab"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            if any(n.split(".")[0] in ("tasks", "screens") for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_cron_paths_never_import_textual_and_help_imports_no_command() -> None:
    commands = sorted(p.stem for p in (ROOT / "opskit/commands").glob("*.py"))
    tasks = sorted(
        ".".join(p.relative_to(ROOT / "tasks").with_suffix("").parts)
        for p in (ROOT / "tasks").rglob("*.py")
    )
    modules = [f"opskit.commands.{c}" for c in commands] + [
        f"opskit.tasks.{t}".removesuffix(".__init__") for t in tasks
    ]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    code = (
        "import sys\nfrom opskit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opskit.commands.', 'opskit.tasks'))"
        " and m != 'opskit.commands.common'))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout


def test_the_wheel_installs_only_the_opskit_package(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("opskit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"opskit", f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"}
    assert "opskit/tasks/retention.py" in names and "opskit/screens/app.py" in names
    assert "opskit/screens/opskit.tcss" in names
