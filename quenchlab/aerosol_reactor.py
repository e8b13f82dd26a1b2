"""An aerosol (flame spray) line assembled from its config: valve, pump, gases, gauge, flame.

With `simulate=True` its twins are started (on a clock `speed` times faster than the wall)
and the very same drivers connect to them. As a library line it offers `prepare()` (gases to
their setpoints, the pump running on the solvent port), `plan(slot, md)` (one valve-switched
sample) and `safe()` (pump stopped, valve on the solvent port).
"""
import bluesky.plan_stubs as bps

from quenchlab.devices.alicat_device import MassFlowController, PressureGauge
from quenchlab.devices.alicat_driver import DIFFERENTIAL_PRESSURE, AlicatUnit
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.ne1000_device import SyringePump
from quenchlab.devices.ne1000_driver import NE1000, PumpAlarm
from quenchlab.devices.phase_marker import PhaseMarker
from quenchlab.devices.process_logger import ProcessLogger
from quenchlab.devices.transport import run_together
from quenchlab.devices.vici_device import SelectorValve
from quenchlab.devices.vici_driver import ViciValve
from quenchlab.plans.sequences import aerosol_sample

from .aerosol_config import AerosolConfig
from .clock import ReactorClock
from .assembly import Assembly
from .interlock import Interlock, Watch
from .errors import ConfigError, InstrumentError

STALE_PERIODS = 5  # process data this many log periods old trip (before the pump's safe mode stops it)


class AerosolReactor(Assembly):
    """`simulate`: start the twins, in a child process (so host and twins each have a core), or
    in this process with `twins_in_process` (tests reach into `self.twins` to inject faults)."""

    def __init__(self, config: AerosolConfig, *, simulate: bool = False, speed: float = 1.0,
                 twins_in_process: bool = False):
        if speed != 1.0 and not (simulate or config.simulated):
            raise ConfigError("--speed is for dry runs on the twins only: a real reactor runs at speed 1")
        super().__init__()
        self.config = config
        self.clock = ReactorClock(speed)
        self.twins = None
        i = config.instruments
        addresses = {"valve": i.valve.address, "pump": i.pump.address, "pyrometer": i.pyrometer.address,
                     **{role: g.address for role, g in i.gases.items()}, "filter_gauge": i.filter_gauge.address}
        if simulate or config.simulated:
            from quenchlab.sim.aerosol_twins import AerosolTwins
            from quenchlab.sim.twin_process import TwinProcess
            if twins_in_process:
                self.twins = AerosolTwins(config, self.clock)
            running = self.twins or TwinProcess(AerosolTwins, config, self.clock)
            self._twins.append(running)
            addresses = {name: running.addresses.get(name, running.addresses["gases"]) for name in addresses}
        self._connect_all(addresses, bool(self._twins))

    def _connect(self, addresses: dict[str, str]) -> None:
        i = self.config.instruments
        self.valve_driver = self._open(ViciValve(addresses["valve"], baudrate=i.valve.baudrate))
        if self.valve_driver.positions() != i.valve.positions:
            raise ConfigError(f"instruments.valve.positions is {i.valve.positions} but the valve reports "
                              f"{self.valve_driver.positions()}")
        self.pump_driver = self._open(NE1000(addresses["pump"], i.pump.pump_address, baudrate=i.pump.baudrate,
                                             safe_mode=0))
        self.pump_driver.stop()
        self.pump_driver.set_diameter(i.pump.diameter)
        self.gas_drivers = {role: self._open(AlicatUnit(addresses[role], g.unit, name=f"mfc-{role}"))
                            for role, g in i.gases.items()}
        for role, g in i.gases.items():
            self.gas_drivers[role].set_gas(g.gas)
        self.gauge_driver = self._open(AlicatUnit(addresses["filter_gauge"], i.filter_gauge.unit, name="filter-gauge"))
        if (unit := self.gauge_driver.full_scale(DIFFERENTIAL_PRESSURE).unit) != "kPa":
            raise ConfigError(f"instruments.filter_gauge reports its pressure in {unit}; quenchlab's filter limits "
                              "are in kPa: set the gauge's engineering unit to kPa")
        p = i.pyrometer
        self.pyrometer_driver = self._open(Impac(addresses["pyrometer"], p.bus_address, p.baudrate, name="flame-pyrometer"))
        self.pyrometer_driver.set_emissivity(p.emissivity)
        self.pyrometer_driver.set_response_time(p.response_time)
        self.pyrometer_driver.set_measuring_range(p.range_begin, p.range_end)
        self.valve = SelectorValve(self.valve_driver, name="valve", move_timeout=i.valve.move_timeout)
        self.pump = SyringePump(self.pump_driver, name="pump")
        self.gases = {role: MassFlowController(d, name=f"mfc_{role}") for role, d in self.gas_drivers.items()}
        self.filter_gauge = PressureGauge(self.gauge_driver, name="filter_gauge")
        self.marker = PhaseMarker(self.clock)
        self.logger = ProcessLogger([self._read_lines], self._units(), self.clock, self.config.log_period)

    def _read_lines(self) -> dict[str, float | str]:
        """One row of process data: every line read at the same time (the gas bus's units,
        which share a line, one after another)."""
        gauge, valve, pump, flame = self.gauge_driver, self.valve_driver, self.pump_driver, self.pyrometer_driver
        *frames, filter_frame, port, (infused, _), reading = run_together(
            [(d.io, d.poll_steps()) for d in self.gas_drivers.values()]
            + [(gauge.io, gauge.poll_steps()), (valve.io, valve.position_steps()),
               (pump.io, pump.dispensed_steps()), (flame.io, flame.temperature_steps())])
        row = {}
        for role, frame in zip(self.gas_drivers, frames):
            row[f"{role}_flow"], row[f"{role}_setpoint"] = frame.mass_flow, frame.setpoint
        row.update(filter_pressure=filter_frame.pressure, valve_port=port, pump_infused=infused,
                   pump_status=pump.last_status, flame_temperature=reading.kelvin)
        return row

    def _units(self) -> dict[str, str]:
        units = {"pump_infused": "mL", "filter_pressure": "kPa", "flame_temperature": "K"}
        for role in self.gas_drivers:
            units[f"{role}_flow"] = units[f"{role}_setpoint"] = "L/min"
        return units

    # --- as a library line ------------------------------------------------------------
    def prepare(self) -> None:
        """Gases to their setpoints, the valve on the solvent port, the pump infusing in safe
        mode (it stops by itself if the host falls silent), the process logger running (it
        keeps the pump fed, from before its safe mode is on)."""
        i = self.config.instruments
        for role, g in i.gases.items():
            self.gas_drivers[role].set_setpoint(g.setpoint)
        self.valve_driver.move(i.valve.safe_port, i.valve.move_timeout)
        self._wait_for_flows(settle=30.0)
        self.logger.start()  # before the safe mode's timer: from then on the pump hears from the host every period
        self.pump_driver.enable_safe_mode(round(i.pump.safe_mode))
        if (held := self.pump_driver.safe_mode_timeout()) != round(i.pump.safe_mode):
            raise ConfigError(f"instruments.pump.safe_mode is {round(i.pump.safe_mode)} s but the pump reports "
                              f"{held} s after it was programmed: refusing to run unattended")
        self.pump_driver.set_direction("INF")
        self.pump_driver.set_rate(self.config.defaults.liquid_flow)
        self.pump_driver.run()

    def _wait_for_flows(self, settle: float) -> None:
        """Wait (reactor time) until every controller flows within 5 % of its setpoint."""
        gases = self.config.instruments.gases
        give_up = self.clock.now() + settle
        while True:
            flows = {role: self.gas_drivers[role].poll().mass_flow for role in gases}
            off = {role: q for role, q in flows.items()
                   if abs(q - gases[role].setpoint) > 0.05 * max(gases[role].setpoint, 0.1)}
            if not off:
                return
            if self.clock.now() > give_up:
                raise InstrumentError("gases", "", "poll", "flows did not reach their setpoints within "
                                      f"{settle:g} s: " + ", ".join(f"{r} {q:g} L/min" for r, q in off.items()))
            self.clock.sleep(0.5)

    def plan(self, slot, md: dict):
        line = self.config.line
        reservoir = self.config.reservoirs[slot.row.port]
        md = {"precursor": slot.row.precursor or reservoir.precursor, "liquid_flow": slot.liquid_flow,
              "reactor": self.config.reactor, "speed": self.clock.speed, **md}
        plan = aerosol_sample(self.valve, self.logger, self.marker, self.clock, port=slot.row.port,
                              dwell=slot.dwell, flush=slot.flush, flame_field="flame_temperature",
                              band=line.flame_band, window=line.flame_window, minimum=line.min_flame,
                              allowance=line.settle_allowance, md=md)

        def with_rate():
            yield from bps.mv(self.pump.rate, slot.liquid_flow)
            return (yield from plan)
        return with_rate()

    def interlock(self) -> Interlock:
        """Flame below min_flame or a flow off its setpoint by more than its tolerance suspends
        the plan (it resumes when they recover); a filter pressure above its maximum trips. The
        process logger tells the interlock each row as it reads it, and the error that stopped
        it (a trip, with that error as the reason, at once rather than at the next collect).
        The interlock itself looks at the data's age twice per STALE_PERIODS log periods (of
        wall time at most while rows keep coming and pace a dry run's clock): older data trip
        (a line that stopped answering without an error)."""
        line, i, period = self.config.line, self.config.instruments, self.config.log_period
        watches = [Watch("flame_temperature", low=line.min_flame, recoverable=True, units="K"),
                   Watch("filter_pressure", high=i.filter_gauge.max_pressure_drop, units="kPa"),
                   Watch("data_age", high=STALE_PERIODS * period, units="s")]
        watches += [Watch(f"{role}_flow", low=(1 - g.tolerance) * g.setpoint, high=(1 + g.tolerance) * g.setpoint,
                          recoverable=True, units="L/min") for role, g in i.gases.items() if g.setpoint > 0]

        def data_age() -> dict[str, float]:
            if self.logger.failure:
                raise self.logger.failure
            return {"data_age": self.logger.age()}
        interlock = Interlock(data_age, watches, self.clock, self.safe, STALE_PERIODS * period / 2)
        self.logger.watcher = interlock
        return interlock

    def safe(self) -> list[str]:
        """Logger halted, pump stopped, valve on the solvent port: each step is tried even if
        another fails; returns what went wrong (an alarm reply means the pump is stopped). The
        pump stays in safe mode: should the stop have failed, its timeout still stops it."""
        if not hasattr(self, "logger"):  # connecting failed before the line was assembled
            return []
        problems = []
        for step in (self.logger.halt, self._stop_pump,
                     lambda: self.valve_driver.move(self.config.instruments.valve.safe_port,
                                                    self.config.instruments.valve.move_timeout)):
            try:
                step()
            except Exception as error:  # the next step must still run
                problems.append(str(error))
        return problems

    def _readbacks(self) -> dict:
        """The pump's status (its prompt: stopped, or an alarm) and the valve's port."""
        if not hasattr(self, "logger"):
            return {}
        return {"pump": self.pump_driver.status, "valve_port": self.valve_driver.position}

    def _stop_pump(self) -> None:
        try:
            self.pump_driver.stop()
        except PumpAlarm:  # the pump halted itself on the alarm; now acknowledged: stop again
            self.pump_driver.stop()
