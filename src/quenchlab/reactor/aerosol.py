"""An aerosol (flame spray) line assembled from its config: valve, pump (a syringe or an HPLC
pump), gases, gauge, flame and, if configured, the collector carrying the plate.

With `simulate=True` its twins are started (on a clock `speed` times faster than the wall)
and the very same drivers connect to them. As a library line it offers `prepare()` (gases to
their setpoints, the collector homed and parked on waste behind its closed shutter, an HPLC
pump spraying the solvent), `place(sample, ...)` (the sample's plate position, from the
plate's ledger), `plan(slot, md)` (one valve-switched sample) and `safe()` (pump stopped,
valve on the solvent port, shutter closed, the collector on waste).
"""
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

from quenchlab.clock import ReactorClock
from quenchlab.config.aerosol import AerosolConfig
from quenchlab.config.plate import PlateLedger
from quenchlab.config.slot_budget import round_trip
from quenchlab.devices.alicat_device import MassFlowController, PressureGauge
from quenchlab.devices.alicat_driver import DIFFERENTIAL_PRESSURE, AlicatUnit
from quenchlab.devices.flyers.process_logger import ProcessLogger
from quenchlab.devices.impac_device import ImpacPyrometer
from quenchlab.devices.impac_driver import Impac
from quenchlab.devices.ne1000_device import SyringePump
from quenchlab.devices.ne1000_driver import NE1000, PumpAlarm
from quenchlab.devices.soft.phase_marker import CollectionRecord, PhaseMarker
from quenchlab.devices.ssi_device import HplcPump
from quenchlab.devices.ssi_driver import SsiPump
from quenchlab.devices.transport import run_together
from quenchlab.devices.vici_device import SelectorValve
from quenchlab.devices.vici_driver import ViciValve
from quenchlab.devices.zaber_device import Collector
from quenchlab.devices.zaber_driver import ZaberStage
from quenchlab.errors import ConfigError, InstrumentError
from quenchlab.plans.liquid import syringe_changeover
from quenchlab.plans.sequences import Flame, SlotSteps, aerosol_sample
from quenchlab.reactor.assembly import Assembly
from quenchlab.reactor.interlock import Interlock, Watch

STALE_PERIODS = 5  # process data this many log periods old trip (before the pump's safe mode stops it)
PUMP_CHECK_ROWS = 5  # an HPLC pump's faults (RF) are read every this many rows, and as collecting ends


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
        addresses = {instrument.name: instrument.entry.address for instrument in config.listed()}
        if simulate or config.simulated:
            from quenchlab.sim.aerosol_twins import AerosolTwins
            from quenchlab.sim.twin_process import TwinProcess
            if twins_in_process:
                self.twins = AerosolTwins(config, self.clock)
            running = self.twins or TwinProcess(AerosolTwins, config, self.clock)
            self._twins.append(running)
            addresses = running.config_addresses()
        self._connect_all(addresses, bool(self._twins))

    def _connect(self, addresses: dict[str, str]) -> None:
        i = self.config.instruments
        self.valve_driver = self._open(ViciValve(addresses["valve"], baudrate=i.valve.baudrate), "valve")
        if self.valve_driver.positions() != i.valve.positions:
            raise ConfigError(f"instruments.valve.positions is {i.valve.positions} but the valve reports "
                              f"{self.valve_driver.positions()}")
        self.syringe = i.pump.model == "ne1000"
        if self.syringe:
            self.pump_driver = self._open(NE1000(addresses["pump"], i.pump.pump_address, baudrate=i.pump.baudrate,
                                                 safe_mode=0), "pump")
            self.pump_driver.stop()
            # DIA clears the counters: set it only if wrong
            if abs(self.pump_driver.diameter() - i.pump.diameter) > 0.01:
                self.pump_driver.set_diameter(i.pump.diameter)
        else:
            self.pump_driver = self._open(SsiPump(addresses["pump"], baudrate=i.pump.baudrate,
                                                  head_max_flow=i.pump.max_flow), "pump")
            self.pump_driver.stop()
            self.pump_driver.set_limits(round(i.pump.max_pressure), round(i.pump.min_pressure))
        if i.collector:
            c = i.collector
            self.collector_driver = self._open(ZaberStage(addresses["collector"], device=c.device, baudrate=c.baudrate),
                                              "collector")
        self.gas_drivers = {role: self._open(AlicatUnit(addresses[f"gases.{role}"], g.unit, name=f"mfc-{role}"),
                                             f"gases.{role}")
                            for role, g in i.gases.items()}
        for role, g in i.gases.items():
            self.gas_drivers[role].set_gas(g.gas)
        self.gauge_driver = self._open(AlicatUnit(addresses["filter_gauge"], i.filter_gauge.unit, name="filter-gauge"),
                                       "filter_gauge")
        if (unit := self.gauge_driver.full_scale(DIFFERENTIAL_PRESSURE).unit) != "kPa":
            raise ConfigError(f"instruments.filter_gauge reports its pressure in {unit}; quenchlab's filter limits "
                              "are in kPa: set the gauge's engineering unit to kPa")
        p = i.pyrometer
        self.pyrometer_driver = self._open(Impac(addresses["pyrometer"], p.bus_address, p.baudrate,
                                                 name="flame-pyrometer"), "pyrometer")
        self.pyrometer_driver.set_emissivity(p.emissivity)
        self.pyrometer_driver.set_response_time(p.response_time)
        self.pyrometer_driver.set_measuring_range(p.range_begin, p.range_end)
        self.valve = SelectorValve(self.valve_driver, name="valve", move_timeout=i.valve.move_timeout)
        self.pump = SyringePump(self.pump_driver, name="pump", capacity=i.pump.capacity, clock=self.clock) \
            if self.syringe else HplcPump(self.pump_driver, name="pump")
        self.collector = Collector(self.collector_driver, name="collector", microstep_um=i.collector.microstep,
                                   shutter_output=i.collector.shutter_output, move_timeout=i.collector.move_timeout) \
            if i.collector else None
        self.gases = {role: MassFlowController(d, name=f"mfc_{role}") for role, d in self.gas_drivers.items()}
        self.filter_gauge = PressureGauge(self.gauge_driver, name="filter_gauge")
        self.pyrometer = ImpacPyrometer(self.pyrometer_driver, name="flame_pyrometer")
        self.marker = PhaseMarker(self.clock)
        self.collection = CollectionRecord(name="collection")
        self.logger = ProcessLogger([self._read_lines], self._units(), self.clock, self.config.log_period,
                                    hinted=("flame_temperature",))
        self._rows = 0

    def _read_lines(self) -> dict[str, float | str]:
        """One row of process data: every line read at the same time (the gas bus's units,
        which share a line, one after another). A syringe pump's reply carries its alarms; an
        HPLC pump's faults take a query of their own, made every PUMP_CHECK_ROWS rows."""
        gauge, valve, pump, flame = self.gauge_driver, self.valve_driver, self.pump_driver, self.pyrometer_driver
        self._rows += 1
        pumped = pump.dispensed_steps() if self.syringe else \
            pump.conditions_steps(check=self._rows % PUMP_CHECK_ROWS == 1)
        *frames, filter_frame, port, pumping, reading = run_together(
            [(d.io, d.poll_steps()) for d in self.gas_drivers.values()]
            + [(gauge.io, gauge.poll_steps()), (valve.io, valve.position_steps()),
               (pump.io, pumped), (flame.io, flame.temperature_steps())])
        row = {}
        for role, frame in zip(self.gas_drivers, frames):
            row[f"{role}_flow"], row[f"{role}_setpoint"] = frame.mass_flow, frame.setpoint
        row.update(filter_pressure=filter_frame.pressure, valve_port=port, flame_temperature=reading.kelvin)
        if self.syringe:  # the syringe's content, from its counters: withdrawn minus infused
            row.update(pump_infused=pumping[0], pump_content=pumping[1] - pumping[0], pump_status=pump.last_status)
        else:
            row.update(pump_pressure=pumping[0], pump_flow=pumping[1])
        return row

    def _units(self) -> dict[str, str]:
        units = {"filter_pressure": "kPa", "flame_temperature": "K"}
        units.update({"pump_infused": "mL", "pump_content": "mL"} if self.syringe else
                     {"pump_pressure": "psi", "pump_flow": "mL/min"})
        for role in self.gas_drivers:
            units[f"{role}_flow"] = units[f"{role}_setpoint"] = "L/min"
        return units

    # --- as a library line ------------------------------------------------------------
    def prepare(self) -> None:
        """Gases to their setpoints, the valve on the solvent port, the collector homed if it
        has no reference (shutter closed first) and parked on waste, the process logger running;
        a syringe emptied to the end of its travel (its counters start from there) and its pump
        in safe mode (it stops by itself if the host falls silent; the logger keeps it fed), an
        HPLC pump spraying the solvent (it has no such mode)."""
        i = self.config.instruments
        for role, g in i.gases.items():
            self.gas_drivers[role].set_setpoint(g.setpoint)
        self.valve_driver.move(i.valve.safe_port, i.valve.move_timeout)
        if self.collector:
            self._park()
        self._wait_for_flows(settle=30.0)
        if not self.syringe:  # RU clears a fault latched before (the line was made safe after it)
            self.pump_driver.set_flow(self.config.defaults.liquid_flow)
            self.pump_driver.run()
            self.logger.start()
            return
        self.pump.empty_to_end(self.config.defaults.liquid_flow)  # known empty before anything is drawn
        self.logger.start()  # before the safe mode's timer: from then on the pump hears from the host every period
        self.pump_driver.enable_safe_mode(round(i.pump.safe_mode))
        if (held := self.pump_driver.safe_mode_timeout()) != round(i.pump.safe_mode):
            raise ConfigError(f"instruments.pump.safe_mode is {round(i.pump.safe_mode)} s but the pump reports "
                              f"{held} s after it was programmed: refusing to run unattended")

    def _park(self) -> None:
        """Shutter closed, then the collector homed (if it has no reference) and on waste."""
        stage, collector = self.collector_driver, self.config.instruments.collector
        stage.set_output(collector.shutter_output, False)
        if "WR" in stage.warnings():
            stage.home()
            stage.wait_idle(timeout=collector.move_timeout)
        self.collector.set(self.config.plate.waste).wait(collector.move_timeout + 5)

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

    def place(self, slot, data_dir: Path, library: Path, attempt: int) -> dict:
        """The sample's plate position, taken in the plate's ledger before the stage goes there:
        the row's own on a first attempt, else the next free one (a retry gets a new one)."""
        plate = self.config.plate
        if plate is None:
            return {}
        ledger = PlateLedger(data_dir, plate)
        wanted = slot.row.position if attempt == 1 and slot.row.position not in ledger.used else None
        free = ledger.free()
        if wanted is None and not free:
            raise ConfigError(f"plate {plate.id} has no free position left for sample {slot.sample_id}: load a new "
                              "plate (plate.id)")
        position = wanted or free[0]
        ledger.take(position, sample_id=slot.sample_id, library=str(library.resolve()), attempt=attempt)
        return {"position": position, "plate": plate.id}

    def plan(self, slot, md: dict):
        """One slot: on its plate position (md["position"], or the one pre-flight gave)."""
        line, pump, reservoir = self.config.line, self.config.instruments.pump, self.config.reservoirs[slot.row.port]
        position = md.get("position") or slot.position
        md = {"liquid_flow": slot.liquid_flow, "reactor": self.config.reactor, "speed": self.clock.speed,
              "instruments": self.connections,
              "position": position, "plate": self.config.plate.id if self.config.plate else None, **md,
              "precursor": slot.row.precursor or reservoir.precursor}  # the row's name for it, or the reservoir's
        changeover = partial(syringe_changeover, self._line(), flow=slot.liquid_flow, prime=pump.prime,
                             charge=slot.budget.charge, withdraw_rate=pump.withdraw_rate) if self.syringe else None
        budget = slot.budget if position == slot.position else replace(
            slot.budget, **dict(zip(("to_position", "back"), round_trip(self.config, position))))
        steps = SlotSteps(slot.row.port, slot.dwell, slot.flush, slot.liquid_flow, budget.spray,
                          self.config.plate.xy(position) if position else None, budget.back,
                          reservoir.solids * line.capture * 1e3, changeover)
        flame = Flame("flame_temperature", line.flame_band, line.flame_window, line.min_flame, line.settle_allowance)
        return aerosol_sample(self._line(), steps, flame, md)

    def _line(self) -> SimpleNamespace:
        """What the plans drive: devices, the logger, the marker, the clock, the waste point."""
        return SimpleNamespace(valve=self.valve, pump=self.pump, collector=self.collector, logger=self.logger,
                               marker=self.marker, collection=self.collection, clock=self.clock,
                               instruments=[d for d in (self.valve, self.pump, self.collector, *self.gases.values(),
                                                        self.filter_gauge, self.pyrometer) if d is not None],
                               waste=self.config.plate.waste if self.config.plate else None)

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
        """Logger halted, pump stopped, valve on the solvent port, shutter closed and the
        collector on waste: each step is tried even if another fails; returns what went wrong
        (an alarm reply means the pump is stopped). A syringe pump stays in safe mode: should
        the stop have failed, its timeout still stops it (an HPLC pump has no such mode)."""
        if not hasattr(self, "logger"):  # connecting failed before the line was assembled
            return []
        problems = []
        steps = [self.logger.halt, self._stop_pump,
                 lambda: self.valve_driver.move(self.config.instruments.valve.safe_port,
                                                self.config.instruments.valve.move_timeout)]
        for step in steps + ([self._park] if self.collector else []):
            try:
                step()
            except Exception as error:  # the next step must still run
                problems.append(str(error))
        return problems

    def _readbacks(self) -> dict:
        """The pump's status (a syringe's prompt: stopped, or an alarm; an HPLC pump's run
        flag), the valve's port, the shutter and the collector's position (mm)."""
        if not hasattr(self, "logger"):
            return {}
        pump = self.pump_driver.status if self.syringe else \
            lambda: "running" if self.pump_driver.running() else "stopped"
        readbacks = {"pump": pump, "valve_port": self.valve_driver.position}
        if self.collector:
            shutter = self.config.instruments.collector.shutter_output
            readbacks["shutter"] = lambda: "open" if self.collector_driver.output(shutter) else "closed"
            readbacks["collector"] = lambda: "{:.2f} mm, {:.2f} mm".format(
                *(self.collector.to_mm(steps) for steps in self.collector_driver.positions()))
        return readbacks

    def _stop_pump(self) -> None:
        try:
            self.pump_driver.stop()
        except PumpAlarm:  # the pump halted itself on the alarm; now acknowledged: stop again
            self.pump_driver.stop()
