"""Configs and recipes are validated, and checked against the limits, before any instrument."""
import pytest
import yaml

from conftest import CONFIGS
from quenchlab.config.fjh import load_config
from quenchlab.errors import ConfigError, LimitError
from quenchlab.plans.recipe import checked_plan
from quenchlab.recipes.load import load_recipe
from quenchlab.recipes.pulse import compile_recipe, energy_bound


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if isinstance(data, dict) else data)
    return path


def sim_data():
    return yaml.safe_load((CONFIGS / "fjh-sim.yaml").read_text())


def recipe_data():
    return yaml.safe_load((CONFIGS / "recipes" / "thin-film-2000K.yaml").read_text())


def test_shipped_files_are_valid():
    config = load_config(CONFIGS / "fjh-sim.yaml")[0]
    assert config.simulated
    assert not load_config(CONFIGS / "fjh-lab.example.yaml")[0].simulated
    other_supplies = {"thin-film-host-timed.yaml": "fjh-genesys-sim.yaml",
                      "thin-film-anneal-kelvin.yaml": "fjh-genesys-sim.yaml",
                      "carbon-paper-shot.yaml": "fjh-capbank-sim.yaml"}
    for recipe in (CONFIGS / "recipes").glob("*.yaml"):
        rig = load_config(CONFIGS / other_supplies[recipe.name])[0] if recipe.name in other_supplies else config
        assert rig.simulated
        checked_plan(load_recipe(recipe)[0], rig, str(recipe))


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["instruments"]["supply"].update(colour="red"),
     r"field instruments\.supply\.colour: unknown key; allowed keys: model, address"),
    (lambda d: d["instruments"]["supply"].pop("ovp"), r"field instruments\.supply\.ovp: missing \(required\)"),
    (lambda d: d["instruments"]["supply"].update(ovp=55), r"instruments\.supply\.ovp: needs a unit, e\.g\. '55 V'"),
    (lambda d: d["instruments"]["supply"].update(ovp="55 A"), r"'55 A' is not convertible to V"),
    (lambda d: d["instruments"]["supply"].update(watchdog="2 h"),
     r"instruments\.supply\.watchdog: Input should be less than or equal to 3600"),
    (lambda d: d["instruments"]["supply"].update(model="acme"),
     r"instruments\.supply\.model: 'acme' is not allowed; allowed: keysight-n6900, tdk-genesys, capbank"),
    (lambda d: d["instruments"]["pyrometer"].update(baudrate=1234), r"baudrate: Input should be 9600, 19200"),
    (lambda d: d["instruments"]["pyrometer"].update(response_time="2 ms"),
     r"response_time must be one of 0 s, 0\.001 s"),
    (lambda d: d["limits"].update(max_voltage="60 V"), r"ovp \(55 V\) must be above limits\.max_voltage \(60 V\)"),
    (lambda d: d.update(kind="kiln"), r"field kind: Input should be 'fjh'"),
    (lambda d: d["instruments"]["supply"].update(address="192.168.1.20:5025"),
     r"field instruments\.supply\.address: '192\.168\.1\.20:5025' is not a VISA resource name \(e\.g\. "
     r"TCPIP::192\.168\.1\.20::5025::SOCKET"),
    (lambda d: d["instruments"]["pyrometer"].update(address="tcp://10.0.0.5:4001"),
     r"instruments\.pyrometer\.address: .*not a serial address: a port's path \(/dev/ttyUSB0, COM3\) or a gateway's "
     r"socket://host:port or rfc2217://host:port"),
    (lambda d: d.update(visa_library="keysight"), r"field visa_library: .*'@py' \(pyvisa-py"),
    (lambda d: d.update(library={"stop_after_failures": 0}),
     r"field library\.stop_after_failures: Input should be greater than or equal to 1"),
])
def test_bad_config_names_file_field_and_allowed_values(tmp_path, edit, expected):
    data = sim_data()
    edit(data)
    path = write(tmp_path, "reactor.yaml", data)
    with pytest.raises(ConfigError, match=expected) as error:
        load_config(path)
    assert str(error.value).startswith(str(path))


@pytest.mark.parametrize("text, expected", [("instruments: [a, b\n", "not valid YAML"),
                                            ("- just\n- a list\n", "expected a mapping")])
def test_broken_yaml_is_reported(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_config(write(tmp_path, "broken.yaml", text))


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_config(tmp_path / "nowhere.yaml")


def test_yaml_cannot_run_code(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "evil.yaml", "reactor: !!python/object/apply:os.system ['true']\n"))


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["segments"][0].update(level="24 V"), r"segments\.0\.level: '24 V' is not convertible to A"),
    (lambda d: d["segments"][0].update(dwell="6.5"), r"field segments\.0\.dwell: needs a unit"),
    (lambda d: d.update(control="power"),
     r"control: 'power' is not a kind of recipe; allowed: current, voltage, temperature"),
    (lambda d: d.update(segments=[]), r"segments: List should have at least 1 item"),
    (lambda d: d.update(pulses=0), r"pulses: Input should be greater than or equal to 1"),
])
def test_bad_recipe_is_reported(tmp_path, edit, expected):
    data = recipe_data()
    edit(data)
    with pytest.raises(ConfigError, match=expected):
        load_recipe(write(tmp_path, "recipe.yaml", data))


def limits():
    return load_config(CONFIGS / "fjh-sim.yaml")[0].limits


def recipe(tmp_path, **changes):
    data = recipe_data()
    data.update(changes)
    return load_recipe(write(tmp_path, "recipe.yaml", data))[0]


def test_compiled_list_matches_the_recipe(tmp_path):
    program = compile_recipe(recipe(tmp_path), limits())
    assert program.levels == (24.0, 14.5)
    assert program.dwells == pytest.approx((0.0065, 0.0485))
    assert program.limit == 50.0 and program.control == "current"


def test_ramps_are_split_into_list_steps(tmp_path):
    program = compile_recipe(recipe(tmp_path, segments=[{"ramp_to": "20 A", "over": "2 ms"},
                                                        {"ramp_to": "0 A", "over": "1 ms", "steps": 2}]), limits())
    assert program.levels == pytest.approx((5, 10, 15, 20, 10, 0))
    assert program.dwells == pytest.approx((0.5e-3,) * 4 + (0.5e-3,) * 2)


def test_energy_above_the_limit_is_refused(tmp_path):
    hot = recipe(tmp_path, segments=[{"level": "30 A", "dwell": "50 ms"}])  # 30 A x 50 V x 50 ms = 75 J
    assert energy_bound([30.0], [0.05], 50.0) == pytest.approx(75.0)
    with pytest.raises(LimitError, match=r"up to 75 J .* max_energy_per_pulse of 60 J"):
        compile_recipe(hot, limits())


@pytest.mark.parametrize("changes, expected", [
    ({"segments": [{"level": "45 A", "dwell": "1 ms"}]}, r"segments\.0: 45 A exceeds the configured limit of 40 A"),
    ({"compliance": "70 V"}, r"compliance: 70 V exceeds the configured limit of 50 V"),
    ({"off_time": "0.2 s"}, r"off_time: 0\.2 s is below the configured minimum cool-down of 0\.5 s"),
    ({"segments": [{"ramp_to": "1 A", "over": "1 s", "steps": 300}, {"ramp_to": "0 A", "over": "1 s", "steps": 300}]},
     r"needs 600 list steps; the supply holds 512"),
    ({"segments": [{"level": "1 A", "dwell": "0.2 us"}]}, r"shorter than the supply's 1 us resolution"),
])
def test_programs_outside_the_limits_are_refused(tmp_path, changes, expected):
    with pytest.raises(LimitError, match=expected):
        compile_recipe(recipe(tmp_path, **changes), limits())


def test_power_and_duty_cycle_limits(tmp_path):
    base = limits()
    with pytest.raises(LimitError, match=r"up to 1200 W \(level x compliance\), "
                                         r"above the configured max_power of 1000 W"):
        compile_recipe(recipe(tmp_path), base.model_copy(update={"max_power": 1000.0}))
    # 3 pulses of up to 43 J each (24 A x 50 V x 6.5 ms + 14.5 A x 50 V x 48.5 ms), all within a minute
    with pytest.raises(LimitError, match=r"up to 129 J in a minute, "
                                         r"above the configured max_energy_per_minute of 100 J"):
        compile_recipe(recipe(tmp_path), base.model_copy(update={"max_energy_per_minute": 100.0}))
    compile_recipe(recipe(tmp_path), base.model_copy(update={"max_power": 1500.0, "max_energy_per_minute": 200.0}))


@pytest.mark.parametrize("address", ["TCPIP::10.0.0.5::INSTR", "TCPIP0::10.0.0.5::inst0::INSTR",
                                     "TCPIP::10.0.0.5::hislip0,4880::INSTR", "TCPIP::10.0.0.5::5025::SOCKET",
                                     "USB0::0x2A8D::0x1802::MY1234::INSTR", "GPIB0::5::INSTR"])
def test_every_visa_address_form_a_lab_uses_is_taken(tmp_path, address):
    data = sim_data()
    data["instruments"]["supply"]["address"] = address
    data["instruments"]["pyrometer"]["address"] = "rfc2217://[fd00::6]:4001?ign_set_control"  # as ser2net wants it
    config = load_config(write(tmp_path, "reactor.yaml", data))[0]
    assert config.instruments.supply.address == address and not config.simulated
