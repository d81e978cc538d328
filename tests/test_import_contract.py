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


def test_an_upward_import_breaks_the_layers(tmp_path):
    root = _copy_sources(tmp_path)
    with open(root / "curate" / "core" / "lake.py", "a") as f:
        f.write("\n\ndef _upward():\n    from curate.dedup import dedup  # core must not import a stage\n")
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Layers point down" in result.stdout and "BROKEN" in result.stdout
    assert "curate.core.lake -> curate.dedup.dedup" in result.stdout


def test_a_cycle_between_stage_modules_breaks_the_contract(tmp_path):
    root = _copy_sources(tmp_path)
    # dedup.dedup imports dedup.minhash; the reverse import closes a cycle inside one layer
    with open(root / "curate" / "dedup" / "minhash.py", "a") as f:
        f.write("\n\ndef _cycle():\n    from curate.dedup import dedup\n")
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No import cycles" in result.stdout and "BROKEN" in result.stdout


def test_a_library_importing_prefect_breaks_the_contract(tmp_path):
    root = _copy_sources(tmp_path)
    with open(root / "moderation" / "tag.py", "a") as f:
        f.write("\n\ndef _orchestrate():\n    import prefect\n")
    result = _lint(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Libraries never import prefect BROKEN" in result.stdout


def test_no_folder_holds_more_than_15_modules():
    for pkg in PACKAGES:
        for folder in [REPO / pkg, *(p for p in (REPO / pkg).rglob("*") if p.is_dir() and p.name != "__pycache__")]:
            modules = [p for p in folder.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
                       and str(p.relative_to(REPO)) not in SHIMS]
            assert len(modules) <= 15, f"{folder.relative_to(REPO)} holds {len(modules)} modules"
