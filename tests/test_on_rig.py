"""Tests safe on a real rig, marked `rig`: `pytest --rig RIG.yaml` runs them against the
instruments RIG.yaml names; without --rig, on the twins of configs/fjh-sim.yaml and
configs/aerosol-sim.yaml. A test for the other kind of reactor than the rig's is skipped.

What each touches on a rig (nothing else is sent; no output is switched on):
- every instrument is identified and its settings read back (`quenchlab check`'s reading);
- FJH: the supply's protection (OVP, OCP, watchdog) and the pyrometer's settings are programmed
  from the config and read back, the output confirmed off; an N6900 gets a list of 0 A steps,
  armed and aborted without a trigger, and its output confirmed off;
- aerosol: the valve moves to its safe (solvent) port, and is read back there.
"""
import pytest

from conftest import CONFIGS
from quenchlab.config.reactor import load_reactor_config
from quenchlab.config.rig_file import write_rig_file
from quenchlab.control.programs import ListProgram
from quenchlab.devices.vici_driver import ViciValve
from quenchlab.reactor.check import check
from quenchlab.reactor.fjh import FJHReactor
from quenchlab.sim.aerosol_twins import AerosolTwins
from quenchlab.sim.fjh_twins import FJHTwins

pytestmark = pytest.mark.rig
TWINS = {"fjh": (FJHTwins, "fjh-sim.yaml"), "aerosol": (AerosolTwins, "aerosol-sim.yaml")}


def on_rig(request, tmp_path, kind: str):
    """The config of the rig the test runs on: --rig's file, or a rig file written for a sim
    config's twins (started here) for `kind`; either way the instruments are reached at the
    addresses the file gives, as on a rig."""
    path = request.config.getoption("--rig")
    if path is not None:
        config, _ = load_reactor_config(path)
        if config.kind != kind:
            pytest.skip(f"a test for an {kind} rig; {path} is an {config.kind} one")
        yield config
        return
    factory, name = TWINS[kind]
    with factory(load_reactor_config(CONFIGS / name)[0]) as running:
        write_rig_file(CONFIGS / name, running.config_addresses(), tmp_path / "rig.yaml")
        yield load_reactor_config(tmp_path / "rig.yaml")[0]


@pytest.fixture
def fjh_rig(request, tmp_path):
    yield from on_rig(request, tmp_path, "fjh")


@pytest.fixture
def aerosol_rig(request, tmp_path):
    yield from on_rig(request, tmp_path, "aerosol")


@pytest.mark.parametrize("kind", ["fjh", "aerosol"])
def test_every_instrument_answers_and_is_the_configured_model(request, tmp_path, kind):
    for config in on_rig(request, tmp_path, kind):
        assert [(found.name, found.problem) for found in check(config) if found.problem] == []


def test_supply_protection_is_programmed_read_back_and_the_output_left_off(fjh_rig):
    with FJHReactor(fjh_rig) as reactor:  # connecting programs the protection and reads it back
        assert reactor.builder.refusals(reactor.supply_driver) == []
        for setting, actual, wanted in reactor.builder.readbacks(reactor.supply_driver):
            assert actual == pytest.approx(wanted), setting
        assert not reactor.supply_driver.output_enabled()


def test_a_zero_current_list_is_uploaded_armed_and_aborted(fjh_rig):
    if fjh_rig.instruments.supply.model != "keysight-n6900":
        pytest.skip("a list: the N6900's")
    with FJHReactor(fjh_rig) as reactor:
        supply = reactor.supply_driver
        supply.upload_list(ListProgram(levels=(0.0, 0.0), dwells=(0.01, 0.01), limit=1.0))
        supply.arm_list()  # waits for a bus trigger, which is never sent
        supply.output_off()  # aborts the list
        assert not supply.list_running() and not supply.output_enabled()
        assert supply.measure()[1] == pytest.approx(0.0, abs=0.01)


def test_the_valve_moves_to_its_solvent_port(aerosol_rig):
    entry = aerosol_rig.instruments.valve
    valve = ViciValve(entry.address, baudrate=entry.baudrate)
    try:
        valve.move(entry.safe_port, timeout=entry.move_timeout)
        assert valve.position() == entry.safe_port
    finally:
        valve.close()
