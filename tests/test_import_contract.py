"""The import contract (pyproject.toml `[tool.importlinter]`, docs/architecture.md) holds, and
it can fail: an upward import planted in a copy of the packages breaks it.

By hand: `lint-imports` from the repository root (with the root on PYTHONPATH).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("curate", "decontam", "moderation", "flows")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
# re-export shims at documented old paths: no code of their own, not counted as modules
SHIMS = {"decontam/cli.py"}  # installed `decontam` scripts and `python -m decontam.cli` (TEAM.md)


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy_sources(dest: Path) -> Path:
    """The packages' Python files and the contract, nothing else (no data files)."""
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.json*", "*.parquet",
                                                                              "*.gz", "*.html"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def test_the_import_contract_holds():
    result = _lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def _planted(tmp_path: Path, module: str, code: str) -> subprocess.CompletedProcess:
    """`lint-imports` over a copy of the packages with `code` appended to `module` (a path)."""
    root = _copy_sources(tmp_path)
    with open(root / module, "a") as f:
        f.write(f"\n\ndef _planted():\n    {code}\n")
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    return result


def test_an_upward_import_breaks_the_layers(tmp_path):
    out = _planted(tmp_path, "curate/core/lake.py", "from curate.dedup import dedup  # core must not import a stage").stdout
    assert "Layers point down" in out and "BROKEN" in out
    assert "curate.core.lake -> curate.dedup.dedup" in out


def test_flows_importing_the_cli_breaks_the_layers(tmp_path):
    out = _planted(tmp_path, "flows/pipeline.py", "from curate.cli import main").stdout
    assert "flows.pipeline -> curate.cli" in out


def test_a_cycle_between_stage_modules_breaks_the_contract(tmp_path):
    # dedup.dedup imports dedup.minhash; the reverse import closes a cycle inside one layer
    out = _planted(tmp_path, "curate/dedup/minhash.py", "from curate.dedup import dedup").stdout
    assert "No import cycles" in out and "BROKEN" in out


def test_a_library_importing_prefect_breaks_the_contract(tmp_path):
    out = _planted(tmp_path, "moderation/tag.py", "import prefect").stdout
    assert "Libraries never import prefect BROKEN" in out


def test_no_folder_holds_more_than_15_modules():
    for pkg in PACKAGES:
        for folder in [REPO / pkg, *(p for p in (REPO / pkg).rglob("*") if p.is_dir() and p.name != "__pycache__")]:
            modules = [p for p in folder.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
                       and str(p.relative_to(REPO)) not in SHIMS]
            assert len(modules) <= 15, f"{folder.relative_to(REPO)} holds {len(modules)} modules"
