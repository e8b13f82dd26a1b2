"""Running a recipe on a reactor: check, connect, run under a RunEngine, record."""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bluesky.utils import FailedStatus, RunEngineInterrupted

from . import __version__
from .config import FJHConfig
from .engine import abort_run, failure_cause, link_faults_recorded, run_engine, sigterm_interrupts
from .errors import QuenchlabError
from .files import writable_directory
from .reactor import FJHReactor
from .kelvin_recipe import TemperatureRecipe
from .recipe import Recipe
from .recipe_plan import checked_plan
from .writer import HDF5Writer


@dataclass
class Inputs:
    """A validated config and recipe with the files' text, as they go into the record."""

    config: FJHConfig
    config_text: str
    config_source: str
    recipe: Recipe | TemperatureRecipe
    recipe_text: str
    recipe_source: str


def run_recipe(inputs: Inputs, *, simulate: bool, data_dir: Path, sample: str = "",
               on_pulse: Callable[[], None] = lambda: None) -> Path:
    """Run every pulse of the recipe; returns the HDF5 file. Limits are checked before
    any instrument is touched; the supply output is off (a capacitor bank dumped) when this
    returns or raises."""
    recipe_plan = checked_plan(inputs.recipe, inputs.config, inputs.recipe_source)
    writer = HDF5Writer(writable_directory(data_dir))
    with FJHReactor(inputs.config, simulate=simulate) as reactor, run_engine() as engine:
        engine.subscribe(writer)
        engine.subscribe(lambda name, doc: on_pulse() if name == "event_page" and "supply_time" in doc["data"] else None)
        md = {"sample": sample or inputs.recipe.name, "recipe": inputs.recipe_text,
              "recipe_name": inputs.recipe.name, "recipe_file": inputs.recipe_source,
              "reactor_config": inputs.config_text, "config_file": inputs.config_source,
              "reactor": inputs.config.reactor, "simulated": reactor.twins is not None,
              "analysis": inputs.config.analysis.model_dump(), "quenchlab_version": __version__,
              **reactor.supply_metadata}
        plan = recipe_plan(reactor, md)
        interlock = reactor.interlock()
        if interlock:
            interlock.attach(engine, resume_after=1.0)
            interlock.start()
        with link_faults_recorded(reactor, writer):  # once the run's file is closed
            try:
                with sigterm_interrupts(engine):
                    result = engine(plan)
            except RunEngineInterrupted:
                trip = str(interlock.trips[-1]) if interlock and interlock.trips else None
                reason = abort_run(engine, trip or "interrupted by the user")
                if trip:
                    writer.annotate("interlock_trip", trip)
                raise QuenchlabError(f"{reason}: {_ended(reactor, writer)}") from None
            except FailedStatus as failure:  # an instrument action failed: say what the instrument said
                raise QuenchlabError(f"{failure_cause(failure)}; {_ended(reactor, writer)}") from None
            except QuenchlabError as error:  # the plan refused to go on (a learned pulse over the limits)
                raise QuenchlabError(f"{error}; {_ended(reactor, writer)}") from None
            except OSError as error:  # the record could not be written (disk full, storage gone)
                raise QuenchlabError(f"recording failed ({error}); {_ended(reactor, writer)}") from None
            finally:
                if interlock:
                    interlock.halt()
            if result.exit_status != "success":
                raise QuenchlabError(f"the run ended with {result.exit_status}: {result.reason}; "
                                     f"{_ended(reactor, writer)}")
    return writer.path


def _ended(reactor: FJHReactor, writer: HDF5Writer) -> str:
    """How a run that stopped early left the rig and its record."""
    recorded = f"what was recorded is in {writer.path}" if writer.path else "nothing was recorded"
    return f"{reactor.builder.safe_state}; {recorded}"
