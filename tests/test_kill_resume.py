"""Kill a running library at many random points: after each kill every finished sample's file is
complete, the interrupted one is marked, and --resume carries on to one record per sample."""
import csv
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import h5py

from conftest import CONFIGS, QUENCHLAB

KILL_POINTS = int(os.environ.get("QUENCHLAB_KILL_POINTS", "20"))


def library(path: Path) -> Path:
    path.write_text("sample_id,port,dwell\n" + "".join(f"K{i},{i % 9 + 1},90 s\n" for i in range(1, 6)))
    return path


def check(directory: Path) -> dict[str, str]:
    """The invariants that must hold after any kill; returns the manifest's states."""
    manifest = {row["sample_id"]: row for row in csv.DictReader((directory / "manifest.csv").open())}
    files = [p.name for p in directory.glob("*.h5")]
    for sample_id, row in manifest.items():
        assert sum(name.endswith(f"_{sample_id}.h5") for name in files) <= 1, sample_id
        if row["state"] == "done":
            with h5py.File(directory / row["file"], "r") as f:
                assert f["entry/exit_status"][()].decode() == "success"
                assert [p.decode() for p in f["entry/phases/marker_phase"][()]][-1] == "end"
    assert sum(row["state"] == "running" for row in manifest.values()) <= 1
    return {sample_id: row["state"] for sample_id, row in manifest.items()}


def test_kill_at_random_points_then_resume(tmp_path):
    rng = random.Random(20261121)
    lib = library(tmp_path / "kills.csv")
    kills, round_, interrupted = 0, 0, 0
    while kills < KILL_POINTS:
        round_ += 1
        data = tmp_path / f"data{round_}"
        command = [QUENCHLAB, "library", CONFIGS / "aerosol-sim.yaml", lib, "--sim", "--speed", "100",
                   "--data-dir", data]
        directory = data / "kills"
        while kills < KILL_POINTS:
            resume = ["--resume"] if (directory / "journal.jsonl").exists() else []
            process = subprocess.Popen(command + resume, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 4.0))
            finished = process.poll() is not None
            if not finished:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
            if (directory / "manifest.csv").exists():
                states = check(directory)
                if finished or all(state in ("done", "failed", "interrupted") for state in states.values()):
                    break
        final = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr
        states = check(directory)
        assert set(states) == {f"K{i}" for i in range(1, 6)}
        assert set(states.values()) <= {"done", "interrupted"}
        interrupted += list(states.values()).count("interrupted")
    assert interrupted > 0  # some kills did land inside a sample
