"""The fault check's kill reaches the whole process tree, papermill kernels included (they run in
sessions of their own, which a process-group kill would miss)."""
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import fault_check  # noqa: E402

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                         start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_tree_kills_a_child_in_its_own_session():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child = int(parent.stdout.readline())
    assert child in fault_check.descendants(parent.pid)
    fault_check.kill_tree(parent)
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert parent.returncode == -9 and not alive(child)


def test_kill_points_cover_every_kind_of_step():
    assert len(fault_check.KILL_POINTS) >= 8
    assert len({p.pattern for p in fault_check.KILL_POINTS}) == len(fault_check.KILL_POINTS)
