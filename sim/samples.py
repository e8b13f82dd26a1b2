"""Sample presets for the flash Joule heating twin (numbers from domain.md).

The heat capacity of graphite is the Butland and Maddison fit quoted by NIST
(cal/(g K), valid ~300-3000 K): about 710 J/(kg K) at 300 K, 1760 at 1000 K and
2020 at 2000 K. Platinum, the melting reference: it melts at 2041.3 K (ITS-90's
secondary point) with 21.3 kJ/mol (Arblaster, Platinum Metals Rev. 1996), c_p 25.65
J/(mol K) at 298 K rising to about 34 near the melting point (a linear estimate), and
the resistance ratio of the Callendar-Van Dusen coefficients (A 3.9083e-3 /K,
B -5.775e-7 /K^2), carried on past their range as an estimate.
"""
from collections.abc import Callable
from dataclasses import dataclass

STEFAN_BOLTZMANN = 5.670374419e-8  # W/(m^2 K^4)
CAL = 4184.0  # J/kg per cal/g
PLATINUM_MOLAR_MASS = 0.19508  # kg/mol


def graphite_heat_capacity(t: float) -> float:
    """c_p of graphite in J/(kg K) at temperature t (K)."""
    t = min(max(t, 250.0), 3500.0)
    cal_per_g = (0.54212 - 2.42667e-6 * t - 90.2725 / t - 43449.3 / t**2
                 + 1.59309e7 / t**3 - 1.43688e9 / t**4)
    return cal_per_g * CAL


def platinum_heat_capacity(t: float) -> float:
    """c_p of platinum in J/(kg K) at temperature t (K), solid or liquid (an estimate)."""
    t = min(max(t, 250.0), 3500.0)
    return (25.65 + 4.8e-3 * (t - 298.0)) / PLATINUM_MOLAR_MASS


@dataclass(frozen=True)
class Sample:
    """A thin resistive sample between two electrodes, lumped to one temperature; one that melts
    holds its melting point while its latent heat goes in (or, freezing, comes out)."""

    name: str
    areal_mass: float  # kg/m^2 (rho_A)
    area: float  # m^2, one face between the electrodes
    r0: float  # ohm at ambient
    alpha: float  # 1/K
    beta: float  # 1/K^2
    emissivity: float = 0.85
    h_convection: float = 15.0  # W/(m^2 K), argon
    ambient: float = 298.0  # K
    heat_capacity: Callable[[float], float] = graphite_heat_capacity  # J/(kg K) at T
    melting_point: float | None = None  # K; None: it does not melt in the twin's range
    latent_heat: float = 0.0  # J/kg of fusion

    def resistance(self, t: float) -> float:
        d = t - self.ambient
        return self.r0 * max(0.05, 1.0 + self.alpha * d + self.beta * d * d)

    def heat_flux(self, t: float, power: float) -> float:
        """Net heat into one face (W/m^2): the electrical power less radiation and convection
        (the lumped model of domain.md)."""
        loss = 2 * self.emissivity * STEFAN_BOLTZMANN * (t**4 - self.ambient**4)
        loss += 2 * self.h_convection * (t - self.ambient)
        return power / self.area - loss

    def dtemperature_dt(self, t: float, power: float) -> float:
        """dT/dt (K/s) for an electrical power (W), away from melting."""
        return self.heat_flux(t, power) / (self.areal_mass * self.heat_capacity(t))


PRESETS = {
    # Toray TGP-H-060 strip, 20 x 5 mm: 8.4 mg/cm^2, ~1.2 ohm, ~25 J to 2000 K.
    "carbon_paper": Sample("carbon_paper", areal_mass=0.084, area=1.0e-4,
                           r0=1.2, alpha=-3.0e-4, beta=1.0e-7),
    # Carbon nanofibre film, ~1 mg/cm^2, 20 x 10 mm: heats >= 1e5 K/s, cools ~4e4 K/s.
    "thin_film": Sample("thin_film", areal_mass=0.010, area=2.0e-4,
                        r0=2.0, alpha=-3.0e-4, beta=1.0e-7),
    # Platinum foil strip 10 um x 2 x 20 mm (21.45 g/cm^3, 10.8 uOhm cm at 298 K): ~0.11 ohm cold,
    # ~0.65 ohm at its melting point; ~2.3 J to reach it and 0.94 J to melt it. Emissivity ~0.3 at 1 um.
    "platinum_strip": Sample("platinum_strip", areal_mass=0.2145, area=4.0e-5, r0=0.108,
                             alpha=3.9083e-3, beta=-5.775e-7, emissivity=0.30,
                             heat_capacity=platinum_heat_capacity, melting_point=2041.3,
                             latent_heat=21.3e3 / PLATINUM_MOLAR_MASS),
}
