"""The `quenchlab` command line."""
import json
import logging
import signal
import threading
from enum import StrEnum
from importlib.resources import files
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress
from rich.text import Text

from quenchlab import __version__
from quenchlab.config.fjh import load_config
from quenchlab.errors import QuenchlabError
from quenchlab.plans.recipe import checked_plan, pulses_fired
from quenchlab.recipes.load import load_recipe
from quenchlab.run.interrupts import Interrupted
from quenchlab.run.session import Inputs, run_recipe
from quenchlab.units import to_si

# quenchlab reports run failures itself, in one paragraph; the RunEngine's own tracebacks would
# bury that message under library internals
for noisy in ("bluesky", "opentelemetry"):
    logging.getLogger(noisy).setLevel(logging.CRITICAL)

class Gateway(StrEnum):
    """How `quenchlab twins --gateway` serves the serial twins: as a raw TCP or an RFC 2217 gateway."""

    socket = "socket"
    rfc2217 = "rfc2217"


app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Instrument control and data acquisition for heat/quench synthesis reactors.")
console = Console(width=max(130, Console().width))  # the per-pulse table needs ~120 columns
errors = Console(stderr=True, soft_wrap=True)
EMBEDDED = files("quenchlab.configs")


def _version(wanted: bool) -> None:
    if wanted:
        console.print(f"quenchlab {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="print quenchlab's version and exit")):
    """The options before any command."""


def main() -> None:
    """The command line. Every user error, wherever a command meets it (a bad file, a folder that
    is not there, an instrument that does not answer), ends as one paragraph on stderr and exit
    code 2; a traceback means a fault in quenchlab."""
    try:
        app()
    except (QuenchlabError, OSError) as error:
        _report(error)
        raise SystemExit(2) from None


def _fail(error: Exception) -> None:
    _report(error)
    raise typer.Exit(2)


def _report(error: Exception) -> None:
    for number in (signal.SIGINT, signal.SIGTERM):  # ending: a second Ctrl-C must not cut the report short
        signal.signal(number, signal.SIG_IGN)
    errors.print(Text.assemble(("error: ", "bold red"), str(error)), highlight=False)


def _interrupted(error: Interrupted) -> None:
    """A signal before any run began (connecting): the instruments were let go, made safe."""
    _fail(QuenchlabError(f"{error.reason} before any run began: nothing was recorded; the instruments were "
                         "brought to their safe state and let go"))


def _load(config: Path, recipe: Path) -> Inputs:
    cfg, cfg_text = load_config(config)
    rec, rec_text = load_recipe(recipe)
    return Inputs(cfg, cfg_text, str(config), rec, rec_text, str(recipe))


def _run(inputs: Inputs, simulate: bool, data_dir: Path | None, sample: str) -> None:
    directory = data_dir or Path(inputs.config.data_dir)
    from quenchlab.cli.inspect import (  # matplotlib: loaded by the commands that draw, half a second
        pulse_line,
        show_run,
    )
    from quenchlab.record.reader import ANALYSED_AT
    recorded = []
    analysed_at = {k: v for k, v in inputs.config.analysis.model_dump().items() if k in ANALYSED_AT}

    def analysed(figures: dict) -> None:
        recorded.append(figures)
        progress.console.print(pulse_line(len(recorded), figures, analysed_at), highlight=False)
        progress.update(task, completed=max(progress.tasks[task].completed, len(recorded)))

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{inputs.recipe.name}: pulses", total=pulses_fired(inputs.recipe))
        path = run_recipe(inputs, simulate=simulate, data_dir=directory, sample=sample, on_pulse=analysed,
                          on_fired=lambda fired: progress.update(task, completed=max(fired, len(recorded))))
    show_run(console, path)


def _preflight(inputs: Inputs) -> None:
    """The recipe checked against every limit (checked_plan), and what it will fire."""
    from quenchlab.cli.library import pulses_table
    from quenchlab.library.preflight_fjh import fjh_pulses
    checked_plan(inputs.recipe, inputs.config, inputs.recipe_source)
    fires = fjh_pulses(inputs.recipe, inputs.config, inputs.recipe_source)
    console.print(pulses_table([(inputs.recipe.name, Path(inputs.recipe_source).name, fires)],
                               inputs.config.simulation.sample))
    console.print("pre-flight passed: no instrument was touched", highlight=False)


@app.command()
def demo(data_dir: Path = typer.Option(Path("data"), help="where the HDF5 record and PNG go")):
    """Run a short pulse train on the simulated reactor (thin-film sample) and show the result."""
    try:
        _run(_load(Path(str(EMBEDDED / "fjh-sim.yaml")), Path(str(EMBEDDED / "recipes" / "thin-film-2000K.yaml"))),
             True, data_dir, "thin-film-demo")
    except QuenchlabError as error:
        _fail(error)
    except Interrupted as error:
        _interrupted(error)


@app.command()
def run(config: Path = typer.Argument(..., help="reactor config (YAML)"),
        recipe: Path = typer.Argument(..., help="pulse recipe (YAML)"),
        sim: bool = typer.Option(False, "--sim", help="run on the config's simulated twins"),
        sample: str = typer.Option("", help="sample name for the record (default: the recipe name)"),
        data_dir: Path = typer.Option(None, help="where records go (default: the config's data_dir)"),
        preflight: bool = typer.Option(False, "--preflight", help="check and forecast only; touch no instrument")):
    """Run a recipe on the configured reactor (real instruments, or its twins with --sim)."""
    try:
        inputs = _load(config, recipe)
        if preflight:
            return _preflight(inputs)
        _run(inputs, sim, data_dir, sample)
    except QuenchlabError as error:
        _fail(error)
    except Interrupted as error:
        _interrupted(error)


@app.command()
def twins(config: Path = typer.Argument(..., help="reactor config (YAML): FJH or aerosol"),
          speed: float = typer.Option(1.0, "--speed", min=1.0, help="reactor clock speed-up"),
          faults: Path = typer.Option(None, "--faults", help="fault scenario (YAML) to inject"),
          gateway: Gateway = typer.Option(None, "--gateway", help="serve the serial twins on TCP ports, as "
                                          "serial-to-Ethernet gateways do: raw (socket://) or RFC 2217 (rfc2217://)"),
          write_config: Path = typer.Option(None, "--write-config", metavar="RIG.yaml",
                                            help="write a copy of CONFIG whose addresses are the running twins'")):
    """Start a config's twins and serve them until SIGINT/SIGTERM; prints one JSON line each."""
    from quenchlab.clock import ReactorClock
    from quenchlab.config.reactor import load_reactor_config
    from quenchlab.config.rig_file import write_rig_file
    from quenchlab.sim.faults import apply_scenario, load_scenario
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
    with Twins(cfg, clock, gateway=gateway and gateway.value) as running:
        try:
            if scenario:
                apply_scenario(scenario, running, clock, str(faults))
            if write_config:
                write_rig_file(config, running.config_addresses(), write_config)
        except QuenchlabError as error:
            _fail(error)
        for instrument in running.described():
            print(json.dumps(instrument), flush=True)
        while not stop.wait(0.2):
            pass


@app.command()
def inspect(paths: list[Path] = typer.Argument(..., help="a record (.h5); several records to compare; or a library "
                                                        "directory (or its manifest.csv)"),
            png: Path = typer.Option(None, help="where to save the plot (default: beside the record, "
                                                "overview.png in a library, comparison.png beside the first record)")):
    """Show a recorded run (per-pulse table and plot), a library's overview, or runs side by side."""
    from quenchlab.cli.inspect import inspect_paths
    try:
        inspect_paths(paths, png, console)
    except QuenchlabError as error:
        _fail(error)


@app.command()
def library(config: Path = typer.Argument(..., help="reactor config (YAML): aerosol or FJH"),
            samples: Path = typer.Argument(..., help="library file (CSV with a header row, or YAML)"),
            preflight: bool = typer.Option(False, "--preflight", help="check and forecast only; touch no instrument"),
            sim: bool = typer.Option(False, "--sim", help="run on the config's simulated twins"),
            speed: float = typer.Option(1.0, "--speed", help="dry runs only: reactor clock speed-up", min=1.0),
            resume: bool = typer.Option(False, "--resume", help="continue a library: run its pending samples"),
            retry: list[str] = typer.Option([], "--retry", metavar="SAMPLE_ID[,...]",
                                            help="run these samples again, each into a new record (repeatable)"),
            retry_state: str = typer.Option("", "--retry-state", metavar="STATE[,...]",
                                            help="run again every sample in these states: failed, interrupted"),
            fresh_samples: bool = typer.Option(False, "--fresh-samples",
                                               help="FJH: confirm that fresh samples are loaded for the retried ones"),
            data_dir: Path = typer.Option(None, help="where records go (default: the config's data_dir)")):
    """Check a sample library, forecast it and run it unattended (one record per sample attempt).
    Exit code 0: every sample done; 1: the library ran to its end, some samples failed; 2: it
    stopped early (a signal, a failure of the line) or was refused."""
    from quenchlab.cli.library import run_library_command
    try:
        code = run_library_command(config, samples, preflight=preflight, sim=sim, speed=speed, resume=resume,
                                   retry=_listed(retry), retry_states=_listed([retry_state]),
                                   fresh_samples=fresh_samples, data_dir=data_dir, console=console)
    except QuenchlabError as error:
        _fail(error)
    except Interrupted as error:
        _interrupted(error)
    raise typer.Exit(code)


def _listed(values: list[str]) -> list[str]:
    """Values given repeated or comma-separated, or both."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@app.command()
def emissivity(record: Path = typer.Argument(..., help="an FJH record (.h5) of a sample melting"),
               melting: str = typer.Option(..., help="the sample's melting point, e.g. '1728 K' (nickel)"),
               pulse: int = typer.Option(1, help="which pulse of the record", min=1)):
    """Check the pyrometer's emissivity against a known melting point: the plateau the melting
    leaves in the pulse's trace, and the emissivity that reads it at the melting point (added
    to the record)."""
    from quenchlab.record.emissivity import check_record
    try:
        console.print(str(check_record(record, to_si(melting, "K"), pulse)), highlight=False)
    except (QuenchlabError, ValueError, OSError) as error:
        _fail(error)


@app.command()
def check(config: Path = typer.Argument(..., help="reactor config (YAML): FJH or aerosol"),
          sim: bool = typer.Option(False, "--sim", help="check the config's own twins")):
    """Before the first pulse: does every instrument answer, is it the configured model, and how
    do its settings differ from the config? Queries only (an NE-1000 is opened as a run opens it,
    SAF0): nothing is programmed or switched on.
    Exit code 2: an instrument is missing or another model; 1: a run would refuse; 0: ready."""
    from quenchlab.config.reactor import load_reactor_config
    from quenchlab.reactor.check import check as check_all
    from quenchlab.reactor.check import exit_code, table
    from quenchlab.sim.aerosol_twins import AerosolTwins
    from quenchlab.sim.fjh_twins import FJHTwins
    try:
        cfg, _ = load_reactor_config(config)
        if not sim:
            results = check_all(cfg)
        else:
            with (FJHTwins if cfg.kind == "fjh" else AerosolTwins)(cfg) as running:
                results = check_all(cfg, running.config_addresses())
    except QuenchlabError as error:
        _fail(error)
    console.print(table(results))
    raise typer.Exit(exit_code(results))
