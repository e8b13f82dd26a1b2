"""Any recipe file: its `control` key picks the kind (current or voltage steps and ramps,
a temperature profile, a capacitor-bank discharge)."""
from pathlib import Path

from quenchlab.errors import ConfigError
from quenchlab.files import read_yaml, validate
from quenchlab.recipes.kelvin import TemperatureRecipe
from quenchlab.recipes.pulse import Recipe
from quenchlab.recipes.shot import ShotRecipe

KINDS = {"current": Recipe, "voltage": Recipe, "temperature": TemperatureRecipe, "discharge": ShotRecipe}


def load_recipe(path: str | Path) -> tuple[Recipe | TemperatureRecipe | ShotRecipe, str]:
    """(recipe, its text), of the kind its `control` names (current by default)."""
    data, text = read_yaml(path)
    control = data.get("control", "current")
    if not isinstance(control, str) or control not in KINDS:
        raise ConfigError(f"{path}: field control: {control!r} is not a kind of recipe; allowed: {', '.join(KINDS)}")
    return validate(KINDS[control], data, str(path)), text
