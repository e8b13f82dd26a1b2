"""Soak: a long pulse train and a long library on the twins under random faults, then a check
that nothing hung or leaked and that every fault was met and handled.

Faults are drawn at random reactor times from what the drivers must ride through: lost,
cut and late replies to queries (resent), a pyrometer dropout on the flame (the run is
suspended, then resumes). Every lost or cut reply an instrument met must be found among the
link faults the runs recorded (/entry/link_faults). After every round the threads, the open
file descriptors and the resident memory are compared with those after the first round.

    python benchmarks/soak.py              # full: 3 rounds of a 30-pulse train and a 24-sample library (~20 min)
    python benchmarks/soak.py --quick      # reduced, as CI runs it (tests/test_soak.py)
"""
import argparse
import gc
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import yaml

from quenchlab.config.aerosol import load_aerosol_config
from quenchlab.config.fjh import FJHConfig
from quenchlab.files import validate
from quenchlab.library.preflight import aerosol_slots
from quenchlab.library.rows import load_library
from quenchlab.library.runner import run_library
from quenchlab.reactor.aerosol import AerosolReactor
from quenchlab.recipes.load import load_recipe
from quenchlab.run.session import Inputs, run_recipe
from quenchlab.sim.faults import FaultScenario, apply_scenario
from quenchlab.sim.fjh_twins import FJHTwins

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
QUERY_FAULTS = ({"fault": "no_reply"}, {"fault": "partial"}, {"fault": "latency", "delay": "30 ms"})
RESENT = ("no_reply", "partial")  # faults a driver must notice, resend and record
LINGER = 5.0  # s of wall a thread of the round may take to end (a read left to time out) before it counts as leaked
MEMORY_GROWTH = 1.25  # resident memory after the last round / after the first (caches warm up in the first)
QUERIES = {"supply": r"\?", "digitizer": r"\?", "pyrometer": r"ms$", "valve": r"CP$", "gases": r"^[A-Z]$"}  # no writes


@dataclass
class Report:
    faults: int = 0
    unmet: int = 0  # faults still armed at the end: never reached an instrument
    resends: int = 0  # lost or cut replies met (each one recorded, or a problem)
    resources: list[tuple[int, int, float]] = field(default_factory=list)  # threads, fds, MiB per round
    problems: list[str] = field(default_factory=list)


def resources(threads: int | None = None) -> tuple[int, int, float]:
    """Threads, open file descriptors and resident MiB, once unreachable objects are collected
    (what the cycle collector will free is not a leak) and, given a number of `threads`, once
    those beyond it have ended (up to LINGER s)."""
    deadline = time.monotonic() + LINGER
    while threads is not None and threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.05)
    gc.collect()
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return threading.active_count(), len(os.listdir("/proc/self/fd")), pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def query_faults(rng: random.Random, twins, start: float, span: float, count: int) -> list[dict]:
    """`count` lost, cut or late replies to queries (a lost write could not be told from a
    refused one), each armed at a random reactor time within `span` s of `start`."""
    names = [name for name in twins.servers if name in QUERIES]
    return [{"instrument": (name := rng.choice(names)), "on": QUERIES[name],
             "at": f"{start + rng.uniform(0, span)} s", **rng.choice(QUERY_FAULTS)} for _ in range(count)]


def unmet(twins) -> int:
    return sum(len(server.faults.pending) for server in twins.servers.values())


def resends_due(faults: list[dict], twins) -> int:
    """The lost and cut replies injected that met an instrument: each makes a driver resend."""
    pending = sum(f.kind in RESENT for server in twins.servers.values() for f in server.faults.pending)
    return sum(f["fault"] in RESENT for f in faults) - pending


def recorded_link_faults(paths) -> int:
    total = 0
    for path in paths:
        with h5py.File(path, "r") as f:
            total += len(f["entry/link_faults"]) if "link_faults" in f["entry"] else 0
    return total


def check_recorded(name: str, due: int, recorded: int, report: Report) -> None:
    report.resends += due
    if recorded < due:
        report.problems.append(f"{name}: {due} lost or cut replies met, {recorded} link faults recorded")


def fjh_round(rng: random.Random, pulses: int, directory: Path, report: Report) -> None:
    """One train on twins of their own, faults on every link; every pulse must be recorded.
    A long train keeps to the rig's duty-cycle limit (max_energy_per_minute): 10 s apart."""
    data = yaml.safe_load((CONFIGS / "fjh-sim.yaml").read_text())
    with FJHTwins(validate(FJHConfig, data, "fjh-sim.yaml")) as twins:
        for name, address in twins.addresses.items():
            data["instruments"][name]["address"] = address
        config = validate(FJHConfig, data, "soak rig")
        recipe, text = load_recipe(CONFIGS / "recipes" / "thin-film-2000K.yaml")
        off_time = 0.6 if pulses <= 5 else 10.0
        recipe = recipe.model_copy(update={"pulses": pulses, "off_time": off_time})
        faults = query_faults(rng, twins, twins.world.clock.now() + 1, pulses * (off_time + 0.2), max(1, pulses // 3))
        apply_scenario(FaultScenario(faults=faults), twins, twins.world.clock)
        path = run_recipe(Inputs(config, "", "soak", recipe, text, "soak"), simulate=False, data_dir=directory)
        report.faults += len(faults)
        report.unmet += unmet(twins)
        check_recorded(path.name, resends_due(faults, twins), recorded_link_faults([path]), report)
        if twins.supply.output or twins.world.amps:
            report.problems.append(f"{path.name}: the supply output is on after the train")
    with h5py.File(path, "r") as f:
        recorded = sum(name.startswith("pulse_") for name in f["entry"])
        if recorded != pulses or f["entry/exit_status"][()].decode() != "success":
            report.problems.append(f"{path.name}: {recorded} of {pulses} pulses recorded")


def aerosol_round(rng: random.Random, samples: int, directory: Path, report: Report) -> None:
    """One library on the line's twins at --speed 100, query faults and flame dropouts."""
    config = load_aerosol_config(CONFIGS / "aerosol-sim.yaml")[0]
    library = directory / f"soak-{len(report.resources)}.csv"
    library.write_text("sample_id,port,dwell\n" + "".join(f"L{i:03d},{i % 9 + 1},90 s\n" for i in range(samples)))
    slots = aerosol_slots(load_library(library, "aerosol"), config, str(library))
    with AerosolReactor(config, simulate=True, speed=100.0, twins_in_process=True) as reactor:
        start, span = reactor.clock.now() + 60, samples * 70.0
        faults = query_faults(rng, reactor.twins, start, span, samples * 2)
        for _ in range(max(1, samples // 4)):
            at = start + rng.uniform(0, span)
            faults += [{"instrument": "pyrometer", "fault": "dropout", "at": f"{at} s"},
                       {"instrument": "pyrometer", "fault": "recover", "at": f"{at + 3} s"}]
        apply_scenario(FaultScenario(faults=faults), reactor.twins, reactor.clock)
        result = run_library(reactor, slots, library=library, data_dir=directory, resume=False, md={})
        report.faults += len(faults)
        report.unmet += unmet(reactor.twins)
        after_the_last = len(reactor.link_events())  # met once the last sample's file was closed
        check_recorded(library.name, resends_due(faults, reactor.twins),
                       recorded_link_faults(result.directory.glob("*.h5")) + after_the_last, report)
        if reactor.twins.pump.flow_at(reactor.clock.now()):
            report.problems.append(f"{library.name}: the pump still runs after the library")
    failed = [sample for sample, state in result.states.items() if state != "done"]
    if failed:
        report.problems.append(f"{library.name}: samples not done: {', '.join(failed)}")


def soak(rounds: int, pulses: int, samples: int, seed: int, directory: Path) -> Report:
    rng, report = random.Random(seed), Report()
    for _ in range(rounds):
        fjh_round(rng, pulses, directory, report)
        aerosol_round(rng, samples, directory, report)
        report.resources.append(resources(report.resources[0][0] if report.resources else None))
    first, last = report.resources[0], report.resources[-1]
    if last[0] > first[0] or last[1] > first[1]:
        names = sorted(thread.name for thread in threading.enumerate())
        report.problems.append(f"threads/file descriptors grew from {first[:2]} to {last[:2]} "
                               f"(threads: {', '.join(names)})")
    if last[2] > MEMORY_GROWTH * first[2]:
        report.problems.append(f"resident memory grew from {first[2]:.0f} to {last[2]:.0f} MiB")
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of a 4-pulse train and a 3-sample library")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rounds, pulses, samples = (3, 4, 3) if args.quick else (3, 30, 24)
    with tempfile.TemporaryDirectory() as scratch:
        report = soak(rounds, pulses, samples, args.seed, Path(scratch))
    print(f"soak: {rounds} rounds of {pulses} pulses and {samples} samples; faults injected {report.faults}, "
          f"never reached an instrument {report.unmet}; lost or cut replies met {report.resends}, each recorded")
    for i, (threads, fds, mib) in enumerate(report.resources):
        print(f"soak: after round {i + 1}: threads {threads}, file descriptors {fds}, resident {mib:.1f} MiB")
    for problem in report.problems:
        print(f"soak: PROBLEM: {problem}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
