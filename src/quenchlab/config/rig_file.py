"""A rig file: a copy of a reactor config whose instruments' addresses are those of running twins,
so that everything that takes a rig (`run`, `library`, `check`, `pytest --rig`) can be tried on
the twins through the code path a real rig takes."""
from pathlib import Path

import yaml

from quenchlab.errors import ConfigError

MARK = "# written by `quenchlab twins`"


def write_rig_file(source: Path, addresses: dict[str, str], target: Path) -> None:
    """Write `source` to `target` with each instrument's `address` (a nested entry named
    "gases.sheath") set from `addresses`. A file at `target` is replaced only if it was written
    so before: anything else there is the user's."""
    if target.resolve() == source.resolve():
        raise ConfigError(f"--write-config {target}: that is the config itself; name another file")
    if target.exists() and not target.read_text(errors="replace").startswith(MARK):
        raise ConfigError(f"--write-config {target}: the file exists and quenchlab did not write it; "
                          "remove it or name another")
    config = yaml.safe_load(source.read_text())
    instruments = config.get("instruments") or {}
    for name, address in addresses.items():
        *parents, leaf = name.split(".")
        entry = instruments
        for parent in parents:
            entry = entry[parent]
        entry[leaf]["address"] = address
    header = f"{MARK}: {source} with the addresses of its running twins\n"
    target.write_text(header + yaml.safe_dump(config, sort_keys=False))
