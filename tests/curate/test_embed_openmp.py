"""Regression: dedup took 876 s on 10k conversations because torch's OpenMP threads spun.

On a shared 2-core machine the waiting OpenMP thread burned the slice its partner needed
(MiniLM: ~1.8x the CPU-seconds for bit-identical vectors). `curate.models.embed` now asks for
`OMP_WAIT_POLICY=PASSIVE` before torch is first imported, unless the user chose a policy.
Each case runs in a fresh interpreter: the variable only counts before torch loads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys, os; import curate.models.embed as e; assert 'torch' not in sys.modules; "
    "e.pick_device(); assert 'torch' in sys.modules; print(os.environ.get('OMP_WAIT_POLICY'))"
)


def _policy_after_pick_device(env_policy: str | None, *, torch_first: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if env_policy is not None:
        env["OMP_WAIT_POLICY"] = env_policy
    code = PROBE
    if torch_first:
        code = ("import torch, sys, os; import curate.models.embed as e; e.pick_device(); "
                "print(os.environ.get('OMP_WAIT_POLICY'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def test_embedder_sets_passive_openmp_before_torch_loads():
    assert _policy_after_pick_device(None) == "PASSIVE"


def test_a_policy_the_user_set_is_kept():
    assert _policy_after_pick_device("ACTIVE") == "ACTIVE"


def test_no_policy_is_set_once_torch_is_loaded():
    # too late to take effect: leave the environment as the user had it
    assert _policy_after_pick_device(None, torch_first=True) == "None"
