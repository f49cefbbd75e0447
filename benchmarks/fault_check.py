"""Fault injection: SIGKILL `make reproduce` at each kind of step, re-run, compare the bytes.

An uninterrupted `make reproduce PROFILE=tiny` (its own cache and outputs) is the reference.
A second run, from another empty cache, is killed (the whole process tree, papermill kernels
included) once at each kill point below, and re-run after each kill. Once it finishes, every
table and figure must equal the reference's byte for byte, and no half-written result
(`*.partial`, a hidden sweep notebook) may be left. A kill point that never came (its step ran
between two polls) fails the check.

Run: `make fault-check` (12–16 minutes on 2 shared cores: a tiny run, then a tiny run with
its kills and re-runs); `--keep` keeps the folders under build/fault-check/ to look at.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROFILE = "tiny"
POLL_SECONDS = 0.005


@dataclass(frozen=True)
class KillPoint:
    name: str
    pattern: str  # glob under the run's folder (cache/…, outputs/…) whose match triggers it
    delay: float = 0.0  # seconds after the match: into the step, not at its first line
    unless: str = ""  # a file inside the match that must not exist yet ("" = none)


KILL_POINTS = [
    KillPoint("embedded data rendering", "cache/embedded/*.partial"),
    KillPoint("identifiers", "cache/identifiers/*.partial"),
    KillPoint("training mid-epoch", "cache/train/*.partial", delay=1.5),
    KillPoint("mid-checkpoint-save", "cache/train/*.partial/checkpoints/checkpoint-*",
              unless="trainer_state.json"),
    KillPoint("decoding", "cache/decode/*.partial", delay=0.5),
    KillPoint("GSV training", "cache/gsv_train/*.partial", delay=0.2),
    KillPoint("GSV re-ranking", "cache/gsv/*.partial"),
    KillPoint("sweep point", f"outputs/{PROFILE}/sweeps/*/.*.partial.ipynb", delay=3.0),
    KillPoint("report notebook", f"outputs/{PROFILE}/0[56]_*.ipynb.partial.ipynb", delay=2.0),
]
COMPARED = ("tables", "figures")
LEFTOVERS = ("cache/*/*.partial", f"outputs/{PROFILE}/**/.*.ipynb",
             f"outputs/{PROFILE}/*.partial.ipynb")


def environment(run: Path) -> dict[str, str]:
    return {**os.environ, "SEMCORE_CACHE": str(run / "cache"),
            "SEMCORE_OUTPUTS": str(run / "outputs"), "OMP_NUM_THREADS": "1"}


def start(run: Path, log) -> subprocess.Popen:
    """`make reproduce` of the profile into the run's folders, in a session of its own."""
    return subprocess.Popen(["make", "--no-print-directory", "reproduce", f"PROFILE={PROFILE}",
                             f"OUT={run / 'outputs' / PROFILE}"], cwd=REPO, env=environment(run),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def descendants(pid: int) -> list[int]:
    """pid and every process below it (papermill starts kernels in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(Path(stat).parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def kill_tree(proc: subprocess.Popen) -> None:
    for pid in descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()


def triggered(run: Path, point: KillPoint) -> Path | None:
    for match in glob.glob(str(run / point.pattern)):
        if not point.unless or not (Path(match) / point.unless).exists():
            return Path(match)
    return None


def faulted_run(run: Path, log) -> list[dict]:
    """Run to the end, killing at each kill point once and re-running after each kill. Steps
    repeat (many models train, decode and verify), so a point missed once can fire later."""
    report, todo = [], list(KILL_POINTS)
    while True:
        proc, killed = start(run, log), None
        while todo and killed is None and proc.poll() is None:
            for point in todo:
                match = triggered(run, point)
                if match is None:
                    continue
                time.sleep(point.delay)
                if not match.exists():  # the step finished meanwhile: wait for another
                    break
                kill_tree(proc)
                killed = {"kill point": point.name, "at": str(match.relative_to(run))}
                if point.unless:  # whether the kill came before the save was complete
                    killed["mid-save"] = not (match / point.unless).exists()
                todo.remove(point)
                report.append(killed)
                print(f"killed at {point.name}: {killed}", flush=True)
                break
            else:
                time.sleep(POLL_SECONDS)
        if killed is None:
            if proc.wait() != 0:
                raise SystemExit(f"a re-run failed (rc {proc.returncode}); see {log.name}")
            return report + [{"kill point": p.name, "at": None} for p in todo]


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for kind in COMPARED for p in sorted((folder / kind).rglob("*")) if p.is_file()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="keep build/fault-check/ afterwards")
    args = ap.parse_args()
    root = REPO / "build" / "fault-check"
    shutil.rmtree(root, ignore_errors=True)
    reference, faulted = root / "reference", root / "faulted"
    for run in (reference, faulted):
        run.mkdir(parents=True)
    started = time.perf_counter()
    with open(root / "reference.log", "w") as log:
        print("uninterrupted reference run …", flush=True)
        if start(reference, log).wait() != 0:
            raise SystemExit(f"the reference run failed; see {log.name}")
    reference_seconds = time.perf_counter() - started
    with open(root / "faulted.log", "w") as log:
        report = faulted_run(faulted, log)
    want, got = files(reference / "outputs" / PROFILE), files(faulted / "outputs" / PROFILE)
    differ = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
    left = sorted(str(Path(m).relative_to(faulted)) for pattern in LEFTOVERS
                  for m in glob.glob(str(faulted / pattern), recursive=True))
    missed = [r["kill point"] for r in report if r["at"] is None]
    summary = {"kill points": report, "files compared": len(want), "differ": differ,
               "left behind": left, "reference seconds": round(reference_seconds),
               "total seconds": round(time.perf_counter() - started)}
    print(json.dumps(summary, indent=1))
    if not args.keep:
        shutil.rmtree(root)
    if differ or left or missed or not want:
        sys.exit(f"fault check failed: {len(differ)} files differ, {len(left)} left behind, "
                 f"kill points never reached: {missed}")
    print(f"fault check passed: {len(report)} kill points, {len(want)} tables and figures "
          "identical to the uninterrupted run")


if __name__ == "__main__":
    main()
