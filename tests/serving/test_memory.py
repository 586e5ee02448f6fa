"""serving/memory.py: glibc's arena cap is set unless the operator chose one, and never fails."""

import subprocess
import sys

CODE = "from facegan.serving.memory import limit_malloc_arenas, release_free_heap; print(limit_malloc_arenas()); release_free_heap()"


def test_arenas_are_capped_unless_the_operator_chose():
    ours = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert ours.stdout.strip() == "True"  # glibc (this project's machines): mallopt accepted the cap
    env = {"MALLOC_ARENA_MAX": "4", "PATH": "/usr/bin:/bin"}
    theirs = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True, env=env)
    assert theirs.stdout.strip() == "False"  # the operator's MALLOC_ARENA_MAX stands
