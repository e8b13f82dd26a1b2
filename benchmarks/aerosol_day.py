"""Dry-run a day of the aerosol line (288 five-minute samples) on its twins and measure it.

Prints, from one run: the wall time, the speed-up over real time (reactor time / wall time),
the records written, and the process-data rate in reactor time (median interval and the
largest gap, which is where the host could not keep up with the clock).

    python benchmarks/aerosol_day.py                  # the full day, at --speed 5000 (at most: the
                                                      # process logger paces the clock)
    python benchmarks/aerosol_day.py --quick          # 6 samples, for CI
    python benchmarks/aerosol_day.py --samples 12 --speed 2000 --dwell "2.5 min"   # with a 5 min run:
        the wall time per sample against the reactor seconds per sample gives the cost per sample
        (the intercept) and per process row (the slope)
    python benchmarks/aerosol_day.py --tally          # the twins in this process (slower), and the
        plate checked against the twins' own tally: every record states its position, plate and
        powder; each position holds its own sample's powder only, laid while its shutter was open
"""
import argparse
import csv
import resource
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from quenchlab.config.aerosol import load_aerosol_config
from quenchlab.library.preflight import aerosol_slots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import run_library
from quenchlab.reactor.aerosol import AerosolReactor

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "aerosol-sim.yaml"


def day_library(directory: Path, samples: int, dwell: str = "5 min") -> Path:
    path = directory / "day.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "port", "dwell"])
        writer.writerows([f"DAY-{i + 1:03d}", i % 9 + 1, dwell] for i in range(samples))
    return path


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=288)
    parser.add_argument("--speed", type=float, default=5000.0)
    parser.add_argument("--quick", action="store_true", help="6 samples at speed 300")
    parser.add_argument("--dwell", default="5 min", help="each sample's slot (two runs with different slots "
                        "split the wall time into a cost per sample and a cost per process row)")
    parser.add_argument("--tally", action="store_true", help="check the plate against the twins' tally")
    args = parser.parse_args()
    samples, speed = (6, 300.0) if args.quick else (args.samples, args.speed)
    config = load_aerosol_config(CONFIG)[0]
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        library = day_library(directory, samples, args.dwell)
        slots = aerosol_slots(load_library(library, "aerosol"), config, str(library))
        host_before, twins_before = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        with AerosolReactor(config, simulate=True, speed=speed, twins_in_process=args.tally) as reactor:
            start, reactor_start = time.perf_counter(), reactor.clock.now()
            result = run_library(reactor, slots, library=library, data_dir=directory, resume=False, md={})
            wall, reactor_time = time.perf_counter() - start, reactor.clock.now() - reactor_start
            tallied = tally(result.directory, reactor.twins.world.deposits) if args.tally else True
        host, twins = _cpu(resource.RUSAGE_SELF) - host_before, _cpu(resource.RUSAGE_CHILDREN) - twins_before
        files = sorted(result.directory.glob("*.h5"))
        gaps, rows = [], []
        for path in files:
            with h5py.File(path, "r") as f:
                t = f["entry/process/reactor_time"][()]
                rows.append(t.size)
                gaps.extend(np.diff(t))
    gaps = np.asarray(gaps)
    done = sum(state == "done" for state in result.states.values())
    print(f"aerosol_day: samples={samples} records={len(files)} done={done} speed={speed:g}")
    schedule = sum(slot.dwell for slot in slots)  # the samples' slots, end to end
    print(f"aerosol_day: wall={wall:.1f} s ({wall / samples * 1e3:.0f} ms per sample: a 288-sample day in "
          f"{wall / samples * 288:.0f} s; target <= 60 s) schedule={schedule / 3600:.2f} h "
          f"speedup={schedule / wall:.0f}x over the schedule, {reactor_time / wall:.0f}x over the reactor's "
          f"{reactor_time / 3600:.2f} h (the reactor runs on while the host opens each record)")
    print(f"aerosol_day: CPU time per sample: host {host / samples * 1e3:.0f} ms, twins {twins / samples * 1e3:.0f} ms "
          "(with the twins' start; less noisy than the wall time on a shared machine)")
    print(f"aerosol_day: process rows per sample median={np.median(rows):.0f}; "
          f"interval median={np.median(gaps):.2f} s, "
          f"99th percentile={np.percentile(gaps, 99):.2f} s, max={gaps.max():.2f} s of reactor time")
    return 0 if len(files) == samples == done and tallied else 1


def tally(directory: Path, deposits: dict) -> bool:
    """Each record's position, plate and powder against the world's own tally; prints what it found."""
    strays, worst, positions = 0.0, 0.0, set()
    for path in sorted(directory.glob("*.h5")):
        with h5py.File(path, "r") as f:
            entry = f["entry"]
            position, port = entry["sample/position"][()].decode(), int(entry["sample/port"][()])
            marks = dict(zip((p.decode() for p in entry["phases/marker_phase"][()]),
                             entry["phases/marker_reactor_time"][()]))
            powder = entry["collection/collection_powder"][()][0]
            assert entry["sample/plate"][()] and position not in positions
        positions.add(position)
        laid = deposits[position]
        if not marks["collect"] <= laid["first"] <= laid["last"] <= marks["close"]:
            strays += laid["grams"]  # laid outside this sample's open shutter: another sample's
        worst = max(worst, abs(powder - laid["grams"] * 1e3) / (laid["grams"] * 1e3))
        tail = 1 - laid["ports"].get(port, 0.0) / laid["grams"]
    others = set(deposits) - positions - {"shutter"}
    print(f"tally: {len(positions)} positions, each laid only while its own sample's shutter was open: "
          f"{'yes' if not strays else 'NO'}; "
          f"powder elsewhere on the plate: {sum(deposits[k]['grams'] for k in others):.3g} g; "
          f"on the shutter (transitions): {deposits.get('shutter', {}).get('grams', 0):.3g} g; recorded powder within "
          f"{worst:.1%} of the tally; last sample's impurity from the precursor before it {tail:.2%}")
    return not strays and not others


if __name__ == "__main__":
    sys.exit(main())
