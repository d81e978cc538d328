"""`curate pipeline` (the one pipeline front end) leaves Prefect's log lines as Prefect writes them.

Regression: the `curate` group's logging.basicConfig gave the root logger a handler before
prefect was imported, so Prefect printed its run lines without run names ("Finished in state
Completed()" instead of "Task run 'dedup-1a2' - Finished in state Completed()"), which the
SIGKILL sweep (tests/flows/test_kill.py) and a person reading `make run` rely on.
"""

import subprocess
import sys


def test_the_root_handler_of_the_cli_is_taken_off_before_prefect_is_imported():
    code = ("import logging, sys; logging.basicConfig(); "
            "from curate.cli.pipeline import _prefect_logs_its_own_way as off; "
            "assert 'prefect' not in sys.modules; n = len(logging.getLogger().handlers); off(); "
            "print(n, len(logging.getLogger().handlers))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.split() == ["1", "0"]
