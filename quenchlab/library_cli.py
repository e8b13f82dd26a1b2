"""`quenchlab library`: pre-flight, forecast and the unattended run with its progress."""
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from .aerosol_config import AerosolConfig
from .library import load_library
from .library_run import Progress as Report
from .journal import FINAL
from .library_run import library_directory, open_journal, run_library
from .preflight import Forecast, aerosol_forecast, aerosol_slots, fjh_forecast, fjh_shots
from .reactor_config import load_reactor_config


def check(config_path: Path, library_path: Path):
    """(config, config text, samples, forecast): everything checked, no instrument touched."""
    config, text = load_reactor_config(config_path)
    rows = load_library(library_path, config.kind)
    if isinstance(config, AerosolConfig):
        samples = aerosol_slots(rows, config, str(library_path))
        return config, text, samples, aerosol_forecast(samples, config, str(library_path))
    samples = fjh_shots(rows, config, library_path)
    return config, text, samples, fjh_forecast(samples)


def show_forecast(console: Console, samples: list, forecast: Forecast, config) -> None:
    hours = forecast.duration / 3600
    console.print(f"{len(samples)} samples, {hours:.2f} h of reactor time", highlight=False)
    if forecast.liquid:
        table = Table(title="liquid per reservoir")
        for column in ("port", "precursor", "needed (mL)", "held (mL)", "left (mL)"):
            table.add_column(column, justify="right")
        for port, used in sorted(forecast.liquid.items()):
            held = config.reservoirs[port].volume
            table.add_row(str(port), config.reservoirs[port].precursor, f"{used:.1f}", f"{held:.1f}", f"{held - used:.1f}")
        console.print(table)
    if forecast.gas:
        table = Table(title="gas per controller")
        table.add_column("role")
        table.add_column("gas")
        table.add_column("needed (m^3)", justify="right")
        for role, litres in forecast.gas.items():
            table.add_row(role, config.instruments.gases[role].gas, f"{litres / 1000:.2f}")
        console.print(table)
    for warning in forecast.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)


def run_library_command(config_path: Path, library_path: Path, *, preflight: bool, sim: bool, speed: float,
                        resume: bool, data_dir: Path | None, console: Console) -> None:
    config, text, samples, forecast = check(config_path, library_path)
    show_forecast(console, samples, forecast, config)
    if preflight:
        console.print("pre-flight passed: no instrument was touched", highlight=False)
        return
    directory = data_dir or Path(config.data_dir)
    md = {"reactor_config": text, "config_file": str(config_path), "library_file": str(library_path)}
    journal = open_journal(samples, library=library_path, data_dir=directory, resume=resume)
    finished = sum(journal.state(s.sample_id) in FINAL for s in samples)
    reactor = _reactor(config, sim, speed)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with reactor, Progress(*columns, console=console) as bar:
        overall = bar.add_task("library", total=len(samples))
        current = bar.add_task("", total=None)
        report = Report(sample=lambda sid, i, n: bar.update(current, description=f"{sid}: starting"),
                        phase=lambda phase: bar.update(current, description=f"{_name(bar, current)}: {phase}"),
                        done=lambda sid, state: bar.advance(overall))
        bar.update(overall, completed=finished)
        result = run_library(reactor, samples, library=library_path, data_dir=directory, resume=resume,
                             md=md, progress=report, journal=journal)
    states = list(result.states.values())
    console.print(f"records and manifest: {library_directory(directory, library_path)}; "
                  + ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))), highlight=False)


def _name(bar: Progress, task) -> str:
    return bar.tasks[task].description.split(":")[0]


def _reactor(config, sim: bool, speed: float):
    if isinstance(config, AerosolConfig):
        from .aerosol_reactor import AerosolReactor
        return AerosolReactor(config, simulate=sim, speed=speed)
    from .errors import ConfigError
    from .reactor import FJHReactor
    if speed != 1.0:
        raise ConfigError("--speed applies to aerosol dry runs; FJH pulses always run at speed 1")
    return FJHReactor(config, simulate=sim)
