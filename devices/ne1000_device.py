"""ophyd device for a New Era NE-1000 syringe pump: rate, status, dispensed volume, syringe.

The syringe's content is known from the pump's own counters: withdrawn minus infused since
they were last cleared. quenchlab clears them each time it has emptied the syringe (so they
stay within one syringe's volume, where their four digits read to 0.01 mL), and keeps them
otherwise: a resumed library knows the fill the pump left off with. A syringe must be empty
when a pump is first set up (a new diameter clears the counters too, 10.4).
"""
from ophyd import Component as Cpt
from ophyd import Kind, Signal
from ophyd.status import Status

from quenchlab.clock import ReactorClock
from quenchlab.errors import InstrumentError

from .driver_device import DriverDevice, DriverSignal, run_in_thread
from .ne1000_driver import NE1000, RUNNING, PumpAlarm

EMPTY = "all"  # a dispense of everything the syringe holds


class SyringeShortfall(InstrumentError):
    """The syringe would run empty, or draw air, or did not move what it was asked: the sample's
    liquid is not delivered (quenchlab.run.outcome takes it for the sample's failure)."""

    liquid = True


class Dispenser(Signal):
    """`set((direction, mL or EMPTY, mL/min))`: done once the pump has stopped with that volume
    moved; refused before anything moves if a withdrawal would take the syringe past its
    capacity (it would draw air) or an infusion asks for more than it holds."""

    def set(self, value, **kwargs) -> Status:
        direction, volume, rate = value
        return run_in_thread(self, lambda: self.parent.dispense(direction, volume, rate))


class SyringePump(DriverDevice):
    """`spray.set(mL/min)` infuses continuously (0 stops); `dispenser` moves a set volume;
    `rate.set(mL/min)` changes the rate (at once, even while pumping); `stop()` and `unstage()`
    stop the pump. `capacity` (mL) is the syringe's."""

    driver: NE1000

    rate = Cpt(DriverSignal, read="rate", write="set_rate", kind=Kind.normal, units="mL/min")
    spray = Cpt(DriverSignal, read="rate", write="spray", kind=Kind.omitted, units="mL/min")
    dispenser = Cpt(Dispenser, value=None, kind=Kind.omitted)
    status = Cpt(DriverSignal, read="status", kind=Kind.normal)
    running = Cpt(Signal, value=False, kind=Kind.normal)
    infused = Cpt(Signal, value=0.0, kind=Kind.hinted)
    withdrawn = Cpt(Signal, value=0.0, kind=Kind.normal)
    diameter = Cpt(DriverSignal, read="diameter", write="set_diameter", kind=Kind.config, units="mm")
    version = Cpt(DriverSignal, read="version", kind=Kind.config)

    def refresh(self, kinds) -> None:
        super().refresh(kinds)
        if kinds & Kind.normal:
            self.running.put(self.status.get() in RUNNING)
        if kinds & Kind.hinted:
            infused, withdrawn = self.driver.dispensed()
            self.infused.put(infused)
            self.withdrawn.put(withdrawn)

    def describe(self):
        description = super().describe()
        for signal in (self.infused, self.withdrawn):
            description[signal.name]["units"] = "mL"
        return description

    def __init__(self, driver: NE1000, *, name: str, capacity: float = float("inf"),
                 clock: ReactorClock | None = None, **kwargs):
        self.capacity, self.clock = capacity, clock or ReactorClock()
        super().__init__(driver, name=name, **kwargs)

    def content(self) -> float:
        """mL in the syringe, from the pump's counters."""
        infused, withdrawn = self.driver.dispensed()
        return max(0.0, withdrawn - infused)

    def dispense(self, direction: str, volume: float | str, rate: float) -> None:
        """Move `volume` mL (EMPTY: all it holds) and wait, in reactor time, for the pump to stop."""
        held = self.content()
        volume = held if volume == EMPTY else volume
        if direction == "WDR" and held + volume > self.capacity + 1e-6:
            self._refuse("WDR", f"withdrawing {volume:.3g} mL into a syringe holding {held:.3g} mL would pass its "
                                f"{self.capacity:g} mL capacity: it would draw air")
        if direction == "INF" and volume > held + 1e-6:
            self._refuse("INF", f"infusing {volume:.3g} mL from a syringe holding {held:.3g} mL would run it empty")
        if volume > 1e-6:
            self._move(direction, volume, rate, held)
        if direction == "INF" and volume >= held - 1e-6:
            self.driver.clear_dispensed()  # empty: the counters start again from it

    def _move(self, direction: str, volume: float, rate: float, held: float) -> None:
        self.driver.start(direction, rate, volume)
        expected = volume * 60 / rate
        give_up = self.clock.now() + 1.5 * expected + 10
        while self.driver.status() in RUNNING:
            if self.clock.now() > give_up:
                self.driver.stop()
                self._refuse(direction, f"{volume:.3g} mL at {rate:g} mL/min did not end within {give_up:.0f} s")
            self.clock.sleep(min(1.0, max(expected / 50, 0.01)))
        moved = abs(self.content() - held)
        if moved < volume - 0.01 * volume - 1e-3:
            self._refuse(direction, f"moved {moved:.3g} mL of the {volume:.3g} mL asked")

    def empty_to_end(self, rate: float) -> None:
        """Infuse until the plunger meets the end of the syringe's travel (the pump stalls, alarm
        S, here expected and acknowledged), whatever the counters say (a leak or a stall leaves
        them wrong); then clear them: the syringe is empty."""
        try:
            self._move("INF", self.capacity, rate, self.content())
        except PumpAlarm as alarm:
            if alarm.alarm != "S":
                raise
        except SyringeShortfall:  # moved less than the capacity: that is the point
            pass
        else:
            self._refuse("INF", f"infused the syringe's whole {self.capacity:g} mL "
                         "without meeting the end of its travel")
        self.driver.clear_dispensed()

    def _refuse(self, direction: str, problem: str) -> None:
        raise SyringeShortfall(self.driver.name, self.driver.address, f"DIR{direction}", problem)

    def stop(self, *, success: bool = False) -> None:
        self.driver.stop()

    def unstage(self):
        self.driver.stop()
        return super().unstage()
