"""Any reactor config: the `kind` key picks the model (fjh or aerosol)."""
from pathlib import Path

from quenchlab.config.aerosol import AerosolConfig
from quenchlab.config.fjh import FJHConfig
from quenchlab.errors import ConfigError
from quenchlab.files import read_yaml, validate

MODELS = {"fjh": FJHConfig, "aerosol": AerosolConfig}


def load_reactor_config(path: str | Path) -> tuple[FJHConfig | AerosolConfig, str]:
    data, text = read_yaml(path)
    kind = data.get("kind")
    if kind not in MODELS:
        raise ConfigError(f"{path}: field kind: {kind!r} is not a reactor kind; allowed: {', '.join(MODELS)}")
    return validate(MODELS[kind], data, str(path)), text
