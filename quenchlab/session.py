"""Running a recipe on a reactor: check, connect, run under a RunEngine, record."""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bluesky.utils import FailedStatus, RunEngineInterrupted

from quenchlab.plans.pulses import pulse_train

from . import __version__
from .config import FJHConfig
from .engine import abort_run, failure_cause, link_faults_recorded, run_engine, sigterm_interrupts
from .errors import QuenchlabError
from .files import writable_directory
from .reactor import FJHReactor
from .recipe import Recipe, compile_recipe
from .writer import HDF5Writer


@dataclass
class Inputs:
    """A validated config and recipe with the files' text, as they go into the record."""

    config: FJHConfig
    config_text: str
    config_source: str
    recipe: Recipe
    recipe_text: str
    recipe_source: str


def run_recipe(inputs: Inputs, *, simulate: bool, data_dir: Path, sample: str = "",
               on_pulse: Callable[[], None] = lambda: None) -> Path:
    """Run every pulse of the recipe; returns the HDF5 file. Limits are checked before
    any instrument is touched; the supply output is off when this returns or raises."""
    program = compile_recipe(inputs.recipe, inputs.config.limits, inputs.recipe_source, inputs.config.record_window)
    writer = HDF5Writer(writable_directory(data_dir))
    with FJHReactor(inputs.config, simulate=simulate) as reactor, run_engine() as engine:
        engine.subscribe(writer)
        engine.subscribe(lambda name, doc: on_pulse() if name == "event_page" and "supply_time" in doc["data"] else None)
        md = {"sample": sample or inputs.recipe.name, "recipe": inputs.recipe_text,
              "recipe_name": inputs.recipe.name, "recipe_file": inputs.recipe_source,
              "reactor_config": inputs.config_text, "config_file": inputs.config_source,
              "reactor": inputs.config.reactor, "simulated": reactor.twins is not None,
              "analysis": inputs.config.analysis.model_dump(), "quenchlab_version": __version__}
        plan = pulse_train(reactor.flyer, program, inputs.recipe.pulses, inputs.recipe.off_time,
                           detectors=reactor.detectors(), md=md)
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
                raise QuenchlabError(f"{reason}: the supply output is off; {_recorded(writer)}") from None
            except FailedStatus as failure:  # an instrument action failed: say what the instrument said
                raise QuenchlabError(f"{failure_cause(failure)}; the supply output is off; {_recorded(writer)}") from None
            except OSError as error:  # the record could not be written (disk full, storage gone)
                raise QuenchlabError(f"recording failed ({error}); the supply output is off; {_recorded(writer)}") from None
            finally:
                if interlock:
                    interlock.halt()
            if result.exit_status != "success":
                raise QuenchlabError(f"the run ended with {result.exit_status}: {result.reason}; "
                                     f"the supply output is off; {_recorded(writer)}")
    return writer.path


def _recorded(writer: HDF5Writer) -> str:
    return f"what was recorded is in {writer.path}" if writer.path else "nothing was recorded"
