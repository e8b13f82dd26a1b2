"""Sample presets for the flash Joule heating twin (numbers from domain.md).

The heat capacity of graphite is the Butland and Maddison fit quoted by NIST
(cal/(g K), valid ~300-3000 K): about 710 J/(kg K) at 300 K, 1760 at 1000 K and
2020 at 2000 K.
"""
from dataclasses import dataclass

STEFAN_BOLTZMANN = 5.670374419e-8  # W/(m^2 K^4)
CAL = 4184.0  # J/kg per cal/g


def graphite_heat_capacity(t: float) -> float:
    """c_p of graphite in J/(kg K) at temperature t (K)."""
    t = min(max(t, 250.0), 3500.0)
    cal_per_g = (0.54212 - 2.42667e-6 * t - 90.2725 / t - 43449.3 / t**2
                 + 1.59309e7 / t**3 - 1.43688e9 / t**4)
    return cal_per_g * CAL


@dataclass(frozen=True)
class Sample:
    """A thin resistive sample between two electrodes, lumped to one temperature."""

    name: str
    areal_mass: float  # kg/m^2 (rho_A)
    area: float  # m^2, one face between the electrodes
    r0: float  # ohm at ambient
    alpha: float  # 1/K
    beta: float  # 1/K^2
    emissivity: float = 0.85
    h_convection: float = 15.0  # W/(m^2 K), argon
    ambient: float = 298.0  # K

    def resistance(self, t: float) -> float:
        d = t - self.ambient
        return self.r0 * max(0.05, 1.0 + self.alpha * d + self.beta * d * d)

    def dtemperature_dt(self, t: float, power: float) -> float:
        """dT/dt (K/s) of the lumped model of domain.md for an electrical power (W)."""
        loss = 2 * self.emissivity * STEFAN_BOLTZMANN * (t**4 - self.ambient**4)
        loss += 2 * self.h_convection * (t - self.ambient)
        return (power / self.area - loss) / (self.areal_mass * graphite_heat_capacity(t))


PRESETS = {
    # Toray TGP-H-060 strip, 20 x 5 mm: 8.4 mg/cm^2, ~1.2 ohm, ~25 J to 2000 K.
    "carbon_paper": Sample("carbon_paper", areal_mass=0.084, area=1.0e-4,
                           r0=1.2, alpha=-3.0e-4, beta=1.0e-7),
    # Carbon nanofibre film, ~1 mg/cm^2, 20 x 10 mm: heats >= 1e5 K/s, cools ~4e4 K/s.
    "thin_film": Sample("thin_film", areal_mass=0.010, area=2.0e-4,
                        r0=2.0, alpha=-3.0e-4, beta=1.0e-7),
}
