"""Fault scenarios for the twins, from a YAML file or from Python.

    faults:
      - {instrument: pyrometer, fault: no_reply, at: 2 s, count: 3}     # on the wire
      - {instrument: supply, fault: latency, on: "MEAS", delay: 50 ms}
      - {instrument: supply, fault: disconnect, on: "^VOLT ", down: 3 s}  # LAN only
      - {instrument: supply, fault: trip_ot, at: 5 s}                    # in the instrument
      - {instrument: gases, unit: pilot_fuel, fault: over_range, at: 60 s}

Link faults (no_reply, garbage, partial, latency; disconnect, on a TCP link only) act on the
instrument's transport, from reactor time `at` or from the first message matching `on`, for
`count` messages; after a disconnect the link stays down for `down` wall seconds. Instrument
faults are each twin's own (its FAULTS) and happen at reactor time `at`.
"""
import threading
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from quenchlab.clock import ReactorClock
from quenchlab.errors import ConfigError
from quenchlab.files import Strict, load
from quenchlab.sim.servers import LinkFault, TwinGroup
from quenchlab.units import Seconds


class FaultEntry(Strict):
    instrument: str
    fault: str
    unit: str | None = None  # a unit on a bus: the gas role
    at: Annotated[Seconds, Field(ge=0)] | None = None
    on: str | None = None
    count: Annotated[int, Field(ge=1)] = 1
    delay: Annotated[Seconds, Field(ge=0, le=60)] = 0.0
    down: Annotated[Seconds, Field(ge=0)] = 0.0

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data):
        """YAML 1.1 reads a bare `on:` key as the boolean true: take it for `on`."""
        if isinstance(data, dict) and True in data:
            data = {"on" if key is True else key: value for key, value in data.items()}
        return data


class FaultScenario(Strict):
    faults: list[FaultEntry]


def load_scenario(path: str | Path) -> FaultScenario:
    return load(FaultScenario, path)[0]


def apply_scenario(scenario: FaultScenario, twins: TwinGroup, clock: ReactorClock, source: str = "scenario"):
    """Arm every fault; instrument faults are fired by a timer thread on the reactor clock, which
    ends with the twins."""
    timed = []
    for i, entry in enumerate(scenario.faults):
        where = f"{source}: faults.{i}"
        server = twins.servers.get(entry.instrument)
        if server is None:
            raise ConfigError(f"{where}.instrument: {entry.instrument!r} is not an instrument of these twins; "
                              f"allowed: {', '.join(twins.servers)}")
        if entry.fault in server.faults.kinds:
            server.faults.now = clock.now
            server.faults.add(LinkFault(entry.fault, entry.at, entry.on, entry.count, entry.delay, entry.down))
            continue
        target = _target(twins, server, entry, where)
        if entry.fault not in target.FAULTS:
            raise ConfigError(f"{where}.fault: {entry.fault!r} is not a fault of {entry.instrument}; allowed: "
                              f"{', '.join(server.faults.kinds + target.FAULTS)}")
        if entry.at is None:
            raise ConfigError(f"{where}.at: an instrument fault needs a time (e.g. '5 s')")
        timed.append((entry.at, target, entry.fault))
    if timed:
        threading.Thread(target=_fire, args=(sorted(timed, key=lambda t: t[0]), clock, twins.closed), daemon=True,
                         name="fault-scenario").start()


def _target(twins: TwinGroup, server, entry: FaultEntry, where: str):
    if entry.unit is None:
        return server.twin
    units = getattr(twins, "controllers", {})
    if entry.unit not in units:
        raise ConfigError(f"{where}.unit: {entry.unit!r} is not a unit of {entry.instrument}; "
                          f"allowed: {', '.join(units) or 'none'}")
    return units[entry.unit]


def _fire(timed, clock: ReactorClock, closed: threading.Event) -> None:
    """Inject each fault at its time, until the twins are closed."""
    for at, target, fault in timed:
        clock.sleep(at - clock.now(), closed)
        if closed.is_set():
            return
        target.inject(fault)
