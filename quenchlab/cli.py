"""The `quenchlab` command line."""
import json
import logging
import signal
import threading
from importlib.resources import files
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from .analysis import FIGURES
from .config import load_config
from .errors import QuenchlabError
from .plots import plot_run
from .recipe import load_recipe
from .record import read_run
from .session import Inputs, run_recipe

# quenchlab reports run failures itself, in one paragraph; the RunEngine's own tracebacks would
# bury that message under library internals
for noisy in ("bluesky", "opentelemetry"):
    logging.getLogger(noisy).setLevel(logging.CRITICAL)

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Instrument control and data acquisition for heat/quench synthesis reactors.")
console = Console(width=max(110, Console().width))  # the per-pulse table needs ~100 columns
errors = Console(stderr=True, soft_wrap=True)
EMBEDDED = files("quenchlab.configs")
SHOWN = {"peak_temperature": ("peak K", 1), "time_above_threshold": ("t>thr ms", 1e3),
         "heating_rate": ("heat K/s", 1), "cooling_rate_peak": ("cool@pk K/s", 1),
         "cooling_rate_fixed": ("cool@T K/s", 1), "cooling_rate_500K": ("cool500 K/s", 1),
         "energy": ("E J", 1), "equivalent_time": ("t_eq ms", 1e3), "diffusion_length": ("L um", 1e6)}


def _fail(error: Exception) -> None:
    errors.print(Text.assemble(("error: ", "bold red"), str(error)), highlight=False)
    raise typer.Exit(2)


def _load(config: Path, recipe: Path) -> Inputs:
    cfg, cfg_text = load_config(config)
    rec, rec_text = load_recipe(recipe)
    return Inputs(cfg, cfg_text, str(config), rec, rec_text, str(recipe))


def _run(inputs: Inputs, simulate: bool, data_dir: Path | None, sample: str) -> None:
    directory = data_dir or Path(inputs.config.data_dir)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{inputs.recipe.name}: pulses", total=inputs.recipe.pulses)
        path = run_recipe(inputs, simulate=simulate, data_dir=directory, sample=sample,
                          on_pulse=lambda: progress.advance(task))
    _summarise(path)


def _summarise(path: Path, png: Path | None = None) -> None:
    record = read_run(path)
    table = Table(title=f"{record.title}  [{record.exit_status}]")
    table.add_column("pulse", justify="right")
    for name in FIGURES:
        table.add_column(SHOWN[name][0], justify="right")
    count = len(next(iter(record.figures.values()), []))
    for i in range(count):
        table.add_row(str(i + 1), *(_number(record.figures[n][i] * SHOWN[n][1]) if n in record.figures else "-"
                                    for n in FIGURES))
    console.print(table)
    picture = plot_run(record, png or path.with_suffix(".png"))
    console.print(f"record: {path}\nplot:   {picture}", highlight=False)


def _number(value: float) -> str:
    """Three significant digits, short exponents (1.95e5) so the table fits 80 columns."""
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.0f}" if 100 <= abs(value) < 1e4 else f"{value:.3g}".replace("e+0", "e").replace("e-0", "e-")


@app.command()
def demo(data_dir: Path = typer.Option(Path("data"), help="where the HDF5 record and PNG go")):
    """Run a short pulse train on the simulated reactor (thin-film sample) and show the result."""
    try:
        _run(_load(Path(str(EMBEDDED / "fjh-sim.yaml")), Path(str(EMBEDDED / "recipes" / "thin-film-2000K.yaml"))),
             True, data_dir, "thin-film-demo")
    except QuenchlabError as error:
        _fail(error)


@app.command()
def run(config: Path = typer.Argument(..., help="reactor config (YAML)"),
        recipe: Path = typer.Argument(..., help="pulse recipe (YAML)"),
        sim: bool = typer.Option(False, "--sim", help="run on the config's simulated twins"),
        sample: str = typer.Option("", help="sample name for the record (default: the recipe name)"),
        data_dir: Path = typer.Option(None, help="where records go (default: the config's data_dir)")):
    """Run a recipe on the configured reactor (real instruments, or its twins with --sim)."""
    try:
        _run(_load(config, recipe), sim, data_dir, sample)
    except QuenchlabError as error:
        _fail(error)


@app.command()
def twins(config: Path = typer.Argument(..., help="reactor config (YAML): FJH or aerosol"),
          speed: float = typer.Option(1.0, "--speed", min=1.0, help="reactor clock speed-up"),
          faults: Path = typer.Option(None, "--faults", help="fault scenario (YAML) to inject")):
    """Start a config's twins and serve them until SIGINT/SIGTERM; prints one JSON line each."""
    from .clock import ReactorClock
    from .faults import apply_scenario, load_scenario
    from .reactor_config import load_reactor_config
    try:
        cfg, _ = load_reactor_config(config)
        scenario = load_scenario(faults) if faults else None
    except QuenchlabError as error:
        _fail(error)
    if cfg.kind == "fjh":
        from quenchlab.sim.fjh_twins import FJHTwins as Twins
    else:
        from quenchlab.sim.aerosol_twins import AerosolTwins as Twins
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    clock = ReactorClock(speed)
    with Twins(cfg, clock) as running:
        if scenario:
            try:
                apply_scenario(scenario, running, clock, str(faults))
            except QuenchlabError as error:
                _fail(error)
        for name, address in running.addresses.items():
            print(json.dumps({"name": name, "model": running.models[name], "address": address}), flush=True)
        while not stop.wait(0.2):
            pass


@app.command()
def inspect(file: Path = typer.Argument(..., help="an HDF5 record written by quenchlab"),
            png: Path = typer.Option(None, help="where to save the plot (default: beside the file)")):
    """Show the per-pulse table of a recorded run and plot its traces."""
    try:
        _summarise(file, png)
    except QuenchlabError as error:
        _fail(error)


@app.command()
def library(config: Path = typer.Argument(..., help="reactor config (YAML): aerosol or FJH"),
            samples: Path = typer.Argument(..., help="library file (CSV with a header row, or YAML)"),
            preflight: bool = typer.Option(False, "--preflight", help="check and forecast only; touch no instrument"),
            sim: bool = typer.Option(False, "--sim", help="run on the config's simulated twins"),
            speed: float = typer.Option(1.0, "--speed", help="dry runs only: reactor clock speed-up", min=1.0),
            resume: bool = typer.Option(False, "--resume", help="continue an interrupted library"),
            data_dir: Path = typer.Option(None, help="where records go (default: the config's data_dir)")):
    """Check a sample library, forecast it and run it unattended (one record per sample)."""
    from .library_cli import run_library_command
    try:
        run_library_command(config, samples, preflight=preflight, sim=sim, speed=speed, resume=resume,
                            data_dir=data_dir, console=console)
    except QuenchlabError as error:
        _fail(error)
