"""quenchlab benchmarks: each line is a ratio of two timings taken side by side in one run.

  driver_round_trip   N6900.identify() through pyvisa-py vs *IDN? on a plain socket, same twin
  writer_traces       raw h5py writing the pulse arrays vs HDF5Writer replaying the run's documents
  run_engine_events   RunEngine events/s with the HDF5Writer subscribed vs without

Shared machines are noisy, so only ratios are printed: the two sides of each ratio are
measured in alternating rounds and compared by their medians. The script reports and never
judges: it exits 0 and marks a missed target with MISSED.

    python benchmarks/bench.py [--quick]
"""
from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import h5py
import numpy as np
from bluesky import RunEngine
from ophyd import Device
from ophyd.sim import det
from ophyd.status import Status

from quenchlab.analysis.pulse import FIGURES
from quenchlab.config.fjh import load_config
from quenchlab.devices.n6900_driver import N6900
from quenchlab.record.writer import HDF5Writer
from quenchlab.sim.fjh_twins import FJHTwins

SIM_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fjh-sim.yaml"


@dataclass(frozen=True)
class Sizes:
    rounds: int  # alternating rounds per ratio
    queries: int  # queries per round and side
    pulses: int
    trace_points: int
    supply_points: int
    events: int  # events per RunEngine run


FULL = Sizes(rounds=7, queries=300, pulses=20, trace_points=25_000, supply_points=12_000, events=600)
QUICK = Sizes(rounds=3, queries=40, pulses=3, trace_points=2_500, supply_points=1_200, events=60)


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float
    target: float
    at_least: bool  # True: value >= target is met; False: value <= target is met
    details: str

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.at_least else self.value <= self.target

    def line(self) -> str:
        sign = ">=" if self.at_least else "<="
        missed = "" if self.met else " MISSED"
        return f"{self.name}: ratio={self.value:.2f} (target {sign} {self.target:g}){missed} [{self.details}]"


def alternate(rounds: int, first, second) -> None:
    """Call first() and second() `rounds` times, swapping which goes first each round."""
    for r in range(rounds):
        for side in (first, second) if r % 2 == 0 else (second, first):
            side()


# --- (a) driver round trip -----------------------------------------------------------------
def _socket_query(sock: socket.socket, message: bytes) -> bytes:
    sock.sendall(message)
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the twin closed the connection")
        reply += chunk
    return reply


def driver_round_trip(sizes: Sizes) -> Ratio:
    """Median *IDN? round trip: N6900.identify() over pyvisa-py vs a plain socket.

    The twin serves one connection at a time, so each round opens one side, queries, closes it.
    """
    config, _ = load_config(SIM_CONFIG)
    driver_times: list[float] = []
    socket_times: list[float] = []
    with FJHTwins(config) as twins:
        address = twins.addresses["supply"]
        _, host, port, _ = address.split("::")

        def raw_socket():
            with socket.create_connection((host, int(port)), timeout=2.0) as sock:
                _socket_query(sock, b"*IDN?\n")  # warm-up: the twin may still be closing the last client
                for _ in range(sizes.queries):
                    t0 = time.perf_counter()
                    _socket_query(sock, b"*IDN?\n")
                    socket_times.append(time.perf_counter() - t0)

        def driver():
            supply = N6900(address)
            try:
                supply.identify()  # warm-up, as above
                for _ in range(sizes.queries):
                    t0 = time.perf_counter()
                    supply.identify()
                    driver_times.append(time.perf_counter() - t0)
            finally:
                supply.close()

        alternate(sizes.rounds, raw_socket, driver)
    driver_median, socket_median = statistics.median(driver_times), statistics.median(socket_times)
    return Ratio("driver_round_trip", driver_median / socket_median, 2.0, False,
                 f"identify {driver_median * 1e3:.3f} ms vs raw socket {socket_median * 1e3:.3f} ms, "
                 f"medians of {len(driver_times)} queries each")


# --- (b) writer vs raw h5py ----------------------------------------------------------------
def _finished() -> Status:
    status = Status()
    status.set_finished()
    return status


class RecordedPulses(Device):
    """A flyer with the pulse flyer's fields that hands out ready-made pulses, one page each."""

    def __init__(self, pulses: list[dict], trace_points: int, supply_points: int, name: str = "pulse"):
        super().__init__(name=name)
        self.pulses, self.trace_points, self.supply_points = pulses, trace_points, supply_points
        self._next = 0

    @property
    def hints(self):
        return {"fields": ["temperature"]}

    def kickoff(self) -> Status:
        return _finished()

    def complete(self) -> Status:
        return _finished()

    def describe_collect(self):
        def array(n, dim, units):
            return {"source": "bench", "dtype": "array", "shape": [n], "units": units, "dims": [dim]}

        n, m = self.trace_points, self.supply_points
        keys = {"time": array(n, "time", "s"), "temperature": array(n, "time", "K"),
                "supply_time": array(m, "supply_time", "s"), "current": array(m, "supply_time", "A"),
                "voltage": array(m, "supply_time", "V")}
        keys.update({k: {"source": "bench", "dtype": "number", "shape": [], "units": u} for k, u in FIGURES.items()})
        return {self.name: keys}

    def collect_pages(self):
        pulse, now = self.pulses[self._next], time.time()
        self._next += 1
        yield {"data": {k: [v] for k, v in pulse.items()}, "timestamps": {k: [now] for k in pulse}, "time": [now]}


def make_pulses(sizes: Sizes) -> list[dict]:
    """Pulse traces and figures shaped like the pulse flyer's (values are random)."""
    rng = np.random.default_rng(0)
    n, m = sizes.trace_points, sizes.supply_points
    return [{"time": np.linspace(-0.01, 0.24, n), "temperature": 300 + 1700 * rng.random(n),
             "supply_time": np.linspace(-0.01, 0.24, m), "current": 40 * rng.random(m),
             "voltage": 50 * rng.random(m), **{k: float(rng.random()) for k in FIGURES}}
            for _ in range(sizes.pulses)]


def record_documents(pulses: list[dict], sizes: Sizes) -> list[tuple[str, dict]]:
    """The documents a RunEngine emits while it fires and collects the pulses one by one
    (the shape of quenchlab.plans.pulse_train: the flyer's describe_collect names the stream)."""
    flyer = RecordedPulses(pulses, sizes.trace_points, sizes.supply_points)

    @bpp.run_decorator(md={"plan_name": "bench_pulses", "sample": "bench"})
    def plan():
        for _ in pulses:
            yield from bps.kickoff(flyer, wait=True)
            yield from bps.complete(flyer, wait=True)
            yield from bps.collect(flyer)

    documents: list[tuple[str, dict]] = []
    RE = RunEngine({})
    RE.subscribe(lambda name, doc: documents.append((name, doc)))
    RE(plan())
    return documents


def write_raw(path: Path, pulses: list[dict]) -> None:
    """The writer's datasets with plain h5py: one group of arrays per pulse, a table of
    seq_num, timestamp and figures grown by one row per pulse, a flush per pulse."""
    with h5py.File(path, "w") as f:
        table = f.create_group("pulse")
        columns = {k: table.create_dataset(k, shape=(0,), maxshape=(None,), chunks=(1024,), dtype="f8")
                   for k in ("seq_num", "timestamp", *FIGURES)}
        for i, pulse in enumerate(pulses, start=1):
            group = f.create_group(f"pulse_{i:04d}")
            for field in ("time", "temperature", "supply_time", "current", "voltage"):
                group.create_dataset(field, data=pulse[field])
            row = {"seq_num": i, "timestamp": time.time(), **pulse}
            for field, column in columns.items():
                column.resize((i,))
                column[i - 1] = row[field]
            f.flush()


def writer_traces(sizes: Sizes) -> Ratio:
    """raw h5py time / HDF5Writer time for the same pulses (the writer replays recorded documents)."""
    pulses = make_pulses(sizes)
    documents = record_documents(pulses, sizes)
    pages = sum(name == "event_page" for name, _ in documents)
    if pages != len(pulses):
        raise RuntimeError(f"expected one event page per pulse, the RunEngine emitted {pages}")
    raw_times: list[float] = []
    writer_times: list[float] = []
    with tempfile.TemporaryDirectory(prefix="quenchlab-bench-") as tmp:
        scratch = Path(tmp) / "scratch"

        def raw():
            scratch.mkdir()
            t0 = time.perf_counter()
            write_raw(scratch / "raw.h5", pulses)
            raw_times.append(time.perf_counter() - t0)
            shutil.rmtree(scratch)

        def writer():
            scratch.mkdir()
            t0 = time.perf_counter()
            callback = HDF5Writer(scratch)
            for name, doc in documents:
                callback(name, doc)
            writer_times.append(time.perf_counter() - t0)
            shutil.rmtree(scratch)

        raw(), writer()  # warm-up
        raw_times.clear(), writer_times.clear()
        alternate(sizes.rounds, raw, writer)
    raw_median, writer_median = statistics.median(raw_times), statistics.median(writer_times)
    megabytes = sum(v.nbytes for p in pulses for v in p.values() if isinstance(v, np.ndarray)) / 1e6
    return Ratio("writer_traces", raw_median / writer_median, 0.5, True,
                 f"raw h5py {raw_median * 1e3:.1f} ms vs HDF5Writer {writer_median * 1e3:.1f} ms for "
                 f"{len(pulses)} pulses ({megabytes:.1f} MB), medians of {sizes.rounds}")


# --- (c) RunEngine events/s with and without the writer ----------------------------------------
def readings(n: int):
    """n events of ophyd.sim det in one run."""

    @bpp.run_decorator(md={"plan_name": "bench_readings"})
    def inner():
        for _ in range(n):
            yield from bps.trigger_and_read([det])

    return (yield from inner())


def run_engine_events(sizes: Sizes) -> Ratio:
    """events/s with HDF5Writer subscribed / events/s without."""
    RE = RunEngine({})
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="quenchlab-bench-") as tmp:

        def run(with_writer: bool, keep: bool = True):
            token = RE.subscribe(HDF5Writer(tmp)) if with_writer else None
            t0 = time.perf_counter()
            RE(readings(sizes.events))
            elapsed = time.perf_counter() - t0
            if token is not None:
                RE.unsubscribe(token)
            if keep:
                rates[with_writer].append(sizes.events / elapsed)

        run(False, keep=False), run(True, keep=False)  # warm-up
        alternate(sizes.rounds, lambda: run(True), lambda: run(False))
    with_writer, without = statistics.median(rates[True]), statistics.median(rates[False])
    return Ratio("run_engine_events", with_writer / without, 0.8, True,
                 f"{with_writer:.0f} events/s with HDF5Writer vs {without:.0f} without, "
                 f"runs of {sizes.events} events, medians of {sizes.rounds}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes for CI (a few seconds)")
    sizes = QUICK if parser.parse_args(argv).quick else FULL
    ratios = []
    for bench in (driver_round_trip, writer_traces, run_engine_events):
        ratios.append(bench(sizes))
        print(ratios[-1].line(), flush=True)
    missed = [r.name for r in ratios if not r.met]
    print(f"summary: {len(ratios) - len(missed)}/{len(ratios)} targets met"
          + (f"; MISSED: {', '.join(missed)}" if missed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
