"""Quantities with units in config and recipe files ("55 ms", "30 A", "1e5 K/s").

A value must carry its unit: a bare number is refused, because "55" could be seconds or
milliseconds and a wrong guess could cook the rig.
"""
import math
import re
from functools import cache
from typing import Annotated

import pint
from pydantic import BeforeValidator

registry = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
# pint evaluates arithmetic: chained or large powers ("9**9**9 s") would never finish
_UNSAFE_POWER = re.compile(r"(\*\*|\^)\s*(\(|[-+]?\d{3,}|[-+]?[\d.]+\s*(\*\*|\^))")


@cache
def _unit(unit: str) -> pint.Unit:
    return registry.Unit(unit)


def to_si(value: object, unit: str) -> float:
    """Parse "55 ms"-like text and return its magnitude in `unit` (finite, or refused)."""
    if isinstance(value, bool) or not isinstance(value, (str, pint.Quantity)):
        raise ValueError(f"needs a unit, e.g. '{value} {unit}'")
    if isinstance(value, str) and (len(value) > 64 or _UNSAFE_POWER.search(value)):
        raise ValueError(f"{value!r} is not a plain quantity (a number, a unit, small powers like m^2)")
    try:
        quantity = registry.Quantity(value) if isinstance(value, str) else value
    except Exception:  # pint's parser raises many kinds (tokenizer, syntax, undefined unit ...)
        raise ValueError(f"{value!r} is not a quantity with a unit (e.g. '10 {unit}')") from None
    if not isinstance(quantity, pint.Quantity) or quantity.dimensionless and unit:
        raise ValueError(f"needs a unit, e.g. '{value} {unit}'")
    try:
        magnitude = float(quantity.to(_unit(unit)).magnitude)
    except pint.errors.DimensionalityError:
        raise ValueError(f"{value!r} is not convertible to {unit}") from None
    except Exception:  # e.g. a complex or non-numeric magnitude
        raise ValueError(f"{value!r} is not a quantity with a unit (e.g. '10 {unit}')") from None
    if not math.isfinite(magnitude):
        raise ValueError(f"{value!r} is not a finite quantity")
    return magnitude


def Quantity(unit: str) -> type:
    """A pydantic float field given in the file with a unit, stored in `unit`."""
    return Annotated[float, BeforeValidator(lambda v: to_si(v, unit))]


Seconds = Quantity("s")
Amperes = Quantity("A")
Volts = Quantity("V")
Ohms = Quantity("ohm")
Joules = Quantity("J")
Kelvin = Quantity("K")
