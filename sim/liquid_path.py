"""The liquid's way from the reservoirs to the nozzle, for the aerosol world (domain.md, Reactor 2).

A mixture is a dict {what: fraction}: a port's solution (its port number), AIR, or NOTHING
(a dry line). Lines flow as plugs: what enters one end leaves the other, in order.
- `ContinuousPath`: a piston pump draws through the selector valve and pushes down one line
  (inlet, pump head, pulse damper and outlet, one dead volume) to the nozzle.
- `SyringePath`: withdrawing draws the selected reservoir through the valve's rotor and the
  inlet line into the syringe (inlet check valve); infusing pushes the syringe's content, well
  mixed, through the outlet line (outlet check valve) to the nozzle. What stayed in the inlet
  line, the rotor and the syringe from the last precursor goes out with the next charge unless
  it is primed to waste first. Past the syringe's capacity the plunger draws air (the pump
  cannot tell); an empty syringe delivers nothing (the pump stalls at the end of its travel).
Each `step` returns the volume (mL) and the mixture that reached the nozzle.
"""
from collections import deque

AIR = "air"
NOTHING = None
DRY = {NOTHING: 1.0}


class Plug:
    """A line of `volume` mL in plug flow, holding parcels [volume, mixture], oldest first."""

    def __init__(self, volume: float, mixture: dict = DRY):
        self.parcels = deque([[volume, mixture]])

    def push(self, volume: float, mixture: dict) -> list[list]:
        """`volume` of `mixture` in; returns the parcels pushed out at the far end."""
        if volume <= 0:
            return []
        last = self.parcels[-1] if self.parcels else None
        if last is not None and last[1] is mixture:
            last[0] += volume
        else:
            self.parcels.append([volume, mixture])
        out, left = [], volume
        while left > 1e-12:
            first = self.parcels[0]
            if first[0] <= left:
                out.append(self.parcels.popleft())
                left -= first[0]
            else:
                first[0] -= left
                out.append([left, first[1]])
                left = 0.0
        return out


def blend(parcels: list[list]) -> tuple[float, dict]:
    """(total volume, volume-weighted mixture) of parcels."""
    if len(parcels) == 1:
        return parcels[0][0], parcels[0][1]
    total = sum(volume for volume, _ in parcels)
    mixture: dict = {}
    for volume, parts in parcels:
        for what, share in parts.items():
            mixture[what] = mixture.get(what, 0.0) + share * volume / total
    return total, mixture


class ContinuousPath:
    """Valve -> one line of `dead_volume` mL -> nozzle, driven by `pump.flow_at(t)` (mL/min)."""

    def __init__(self, dead_volume: float, reservoirs: dict[int, float]):
        self.line = Plug(dead_volume)
        self.reservoirs = reservoirs
        self._solutions: dict = {}  # one mixture object per port, so that parcels merge

    def draw(self, port: int | None, volume: float) -> dict:
        """The mixture drawn through the valve for `volume` mL (a dry reservoir gives air)."""
        held = self.reservoirs.get(port, 0.0) if port is not None else 0.0
        if port is None or held <= 0:
            return self._solution(AIR if port is not None else NOTHING)
        self.reservoirs[port] = held - min(volume, held)
        return self._solution(port)

    def _solution(self, what) -> dict:
        solution = self._solutions.get(what)
        if solution is None:
            solution = self._solutions[what] = {what: 1.0}
        return solution

    def step(self, flow: float, port: int | None, dt: float) -> tuple[float, dict]:
        volume = flow * dt / 60.0
        if volume <= 0:
            return 0.0, DRY
        return blend(self.line.push(volume, self.draw(port, volume)))


class SyringePath(ContinuousPath):
    """Valve -> inlet line -> syringe (well mixed) -> outlet line -> nozzle; `flow` > 0 infuses,
    < 0 withdraws."""

    def __init__(self, dead_volume: float, reservoirs: dict[int, float], *, inlet_volume: float,
                 capacity: float, content: float = 0.0):
        super().__init__(dead_volume, reservoirs)
        self.inlet = Plug(inlet_volume)
        self.capacity = capacity
        self.content, self.mixture = content, DRY  # mL in the barrel, and what it is

    def step(self, flow: float, port: int | None, dt: float) -> tuple[float, dict]:
        volume = abs(flow) * dt / 60.0
        if flow > 0:
            volume = min(volume, self.content)
            self.content -= volume
            return blend(self.line.push(volume, self.mixture)) if volume > 0 else (0.0, DRY)
        if flow < 0:
            liquid = max(0.0, min(volume, self.capacity - self.content))
            entering = self.inlet.push(liquid, self.draw(port, liquid)) if liquid > 0 else []
            if volume > liquid:
                entering.append([volume - liquid, self._solution(AIR)])
            self._fill(entering)
        return 0.0, DRY

    def _fill(self, parcels: list[list]) -> None:
        if not parcels:
            return
        volume, mixture = blend(parcels)
        total = self.content + volume
        if total <= 0:
            return
        if self.content <= 1e-12:
            self.mixture = mixture
        else:
            merged = {what: share * self.content / total for what, share in self.mixture.items()}
            for what, share in mixture.items():
                merged[what] = merged.get(what, 0.0) + share * volume / total
            self.mixture = merged
        self.content = total
