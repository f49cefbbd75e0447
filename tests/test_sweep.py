"""Two runs of one profile at once: `make reproduce` waits for the other with a message; sweep
points run through per-process intermediate notebooks, so two sweeps both finish and a killed one
leaves nothing a re-run trips on."""
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import papermill
import pytest

from semcore import sweep

SOURCE = "# %%\nx = 1\n"


def fake_papermill(calls):
    """Stands in for papermill: copies the notebook, after running the first of `calls` (what
    other processes do meanwhile)."""
    def execute(built, partial, **kw):
        assert os.path.basename(built).startswith(".")  # hidden, beside the result
        if calls:
            calls.pop(0)()
        with open(built) as src, open(partial, "w") as dst:
            dst.write(src.read())
    return execute


def test_two_sweeps_running_one_point_at_once_both_finish(tmp_path, monkeypatch):
    source, executed = tmp_path / "point.py", tmp_path / "out" / "a=1.ipynb"
    source.write_text(SOURCE)
    executed.parent.mkdir()
    pid = os.getpid()

    def other_process():  # starts and finishes while the first process's point runs
        monkeypatch.setattr(os, "getpid", lambda: pid + 1)
        sweep.execute_notebook(source, executed, {})
        monkeypatch.setattr(os, "getpid", lambda: pid)

    monkeypatch.setattr(papermill, "execute_notebook", fake_papermill([other_process]))
    sweep.execute_notebook(source, executed, {})
    assert sorted(p.name for p in executed.parent.iterdir()) == ["a=1.ipynb"]


def test_a_failing_point_leaves_no_intermediate_notebook(tmp_path, monkeypatch):
    source, executed = tmp_path / "point.py", tmp_path / "a=1.ipynb"
    source.write_text(SOURCE)

    def fail():
        raise RuntimeError("point failed")

    monkeypatch.setattr(papermill, "execute_notebook", fake_papermill([fail]))
    with pytest.raises(RuntimeError, match="point failed"):
        sweep.execute_notebook(source, executed, {})
    assert [p.name for p in tmp_path.iterdir()] == ["point.py"]


def test_leftovers_of_a_killed_sweep_are_removed_and_a_running_ones_kept(tmp_path):
    """Killed sweeps: one whose process is gone, one that is a zombie not yet reaped (as a
    sweep killed with its make is, until init reaps it)."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    zombie = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    zombie.kill()
    while Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
    killed = [tmp_path / f".a=1.{gone}.source.ipynb", tmp_path / f".a=1.{gone}.partial.ipynb",
              tmp_path / f".a=3.{zombie.pid}.partial.ipynb"]
    running = tmp_path / f".a=2.{os.getpid()}.partial.ipynb"
    result = tmp_path / "a=0.ipynb"
    for path in killed + [running, result]:
        path.write_text("{}")
    sweep.remove_leftovers(tmp_path)
    zombie.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, result.name])


def test_a_second_make_reproduce_of_a_profile_waits_for_the_first(tmp_path):
    """The first holds outputs/<profile>/.lock; the second says so, waits, then runs (here with
    no notebooks, so only the lock is exercised)."""
    out, stamp = tmp_path / "out", tmp_path / "installed"
    out.mkdir()
    stamp.touch()
    with open(out / ".lock", "a") as first:
        fcntl.flock(first, fcntl.LOCK_EX)
        second = subprocess.Popen(["make", "--no-print-directory", "reproduce", "PROFILE=tiny",
                                   f"OUT={out}", "NOTEBOOKS=", f"STAMP={stamp}"],
                                  cwd=Path(__file__).parents[1], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        assert "waiting for another make reproduce of tiny" in second.stdout.readline()
        with pytest.raises(subprocess.TimeoutExpired):
            second.wait(timeout=1)
    rest, _ = second.communicate(timeout=60)
    assert second.returncode == 0 and f"outputs in {out}/" in rest
