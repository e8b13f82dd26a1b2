"""The SCPI engine of quenchlab's twins: IEEE 488.2 ch.7 syntax, SCPI-1999 headers and
parameters, the error queue and the status registers."""
import math

import pytest

from quenchlab.sim.scpi import (
    ERROR_QUEUE_SIZE,
    ScpiEngine,
    ScpiError,
    format_bool,
    format_number,
    format_string,
    parse_bool,
    parse_choice,
    parse_list,
    parse_number,
    parse_string,
)

IDN = "quenchlab,TEST-TWIN,0001,1.0"
MEASURED_VOLTS, MEASURED_AMPS = 7.5, 1.25


class Supply:
    """A tiny supply twin whose handlers store what the engine hands them."""

    def __init__(self):
        self.current = self.voltage = 0.0
        self.output = False
        self.clears = self.triggers = 0
        self.ranges, self.offsets = {}, {}
        self.source, self.text, self.levels, self.echoed = "IMM", "", [], None
        self.engine = e = ScpiEngine(IDN)
        e.command("[SOURce:]CURRent[:LEVel][:IMMediate][:AMPLitude]", self.on_current, max_query_args=1)
        e.command("[SOURce:]VOLTage[:LEVel]", self.on_voltage)
        e.command("OUTPut[:STATe]", self.on_output)
        e.command("OUTPut:PROTection:CLEar", self.on_clear, query=False, max_args=0)
        e.command("LIST:CURRent[:LEVel]", self.on_list, max_args=None)
        e.command("MEASure[:SCALar]:VOLTage[:DC]", lambda a, q: format_number(MEASURED_VOLTS), set=False)
        e.command("MEASure[:SCALar]:CURRent[:DC]", lambda a, q: format_number(MEASURED_AMPS), set=False)
        e.command(":CHANnel<n>:RANGe", self.on_range, suffix_max={"n": 4})
        e.command(":CHANnel<n>:OFFSet", self.on_offset, suffix_max={"n": 4})
        e.command("TRIGger:SOURce", self.on_source)
        e.command("DISPlay:TEXT", self.on_text)
        e.command("DIAGnostic:ECHO", self.on_echo, query=False, max_args=None)
        e.command("*TRG", self.on_trigger, query=False, max_args=0)

    def on_current(self, args, query):
        if query:
            return format_number(parse_number(args, minimum=0, maximum=20) if args else self.current)
        self.current = parse_number(args, minimum=0, maximum=20, default=1, units="A")

    def on_voltage(self, args, query):
        if query:
            return format_number(self.voltage)
        self.voltage = parse_number(args, maximum=60, units="V")

    def on_output(self, args, query):
        if query:
            return format_bool(self.output)
        self.output = parse_bool(args)

    def on_clear(self, args, query):
        self.clears += 1

    def on_list(self, args, query):
        if query:
            return ",".join(format_number(v) for v in self.levels)
        self.levels = parse_list(args, minimum=0, maximum=20, units="A", max_length=4)

    def on_range(self, args, query, n):
        if query:
            return format_number(self.ranges[n])
        self.ranges[n] = parse_number(args)

    def on_offset(self, args, query, n):
        self.offsets[n] = parse_number(args)

    def on_source(self, args, query):
        if query:
            return self.source
        self.source = parse_choice(args, 0, ["BUS", "IMMediate", "EXTernal"])

    def on_text(self, args, query):
        if query:
            return format_string(self.text)
        self.text = parse_string(args)

    def on_echo(self, args, query):
        self.echoed = args

    def on_trigger(self, args, query):
        self.triggers += 1


@pytest.fixture
def twin():
    return Supply()


def drain(engine):
    """Error numbers read with SYSTem:ERRor? until "No error", oldest first."""
    codes = []
    for _ in range(ERROR_QUEUE_SIZE + 1):
        reply = engine.handle("SYST:ERR?")
        if reply == '+0,"No error"':
            return codes
        codes.append(int(reply.split(",")[0]))
    raise AssertionError("error queue never emptied")


def nr3(x):
    return format_number(x)


# --- headers -----------------------------------------------------------------------------

def test_idn_in_any_case(twin):
    assert twin.engine.handle("*IDN?") == IDN
    assert twin.engine.handle("*idn?") == IDN


@pytest.mark.parametrize("line", [
    "CURR 2.5", "CURRENT 2.5", "current 2.5", "cUrReNt 2.5",
    "SOUR:CURR 2.5", "source:current:level:immediate:amplitude 2.5",
    "CURR:IMM 2.5", "SOUR:CURR:AMPL 2.5", ":CURR:LEV 2.5",
])
def test_short_long_forms_case_and_optional_nodes(twin, line):
    assert twin.engine.handle(line) is None
    assert twin.current == 2.5
    assert drain(twin.engine) == []


@pytest.mark.parametrize("line", [
    "CURRE 1", "CUR 1", "CURRENTT 1", "SOURC:CURR 1", "CURR:LEVE 1",
    "LEV:CURR 1", "CURR:AMPL:IMM 1", "SOUR 1",
])
def test_in_between_forms_and_wrong_order_are_undefined(twin, line):
    assert twin.engine.handle(line) is None
    assert twin.current == 0.0
    assert drain(twin.engine) == [-113]


@pytest.mark.parametrize("line", ["MEAS:CURR?", "MEAS:SCAL:CURR:DC?", "measure:scalar:current?", "MEAS:CURR:DC?"])
def test_optional_middle_and_last_nodes(twin, line):
    assert twin.engine.handle(line) == nr3(MEASURED_AMPS)


def test_numeric_suffix_defaults_to_one_and_reaches_the_handler(twin):
    twin.engine.handle("CHAN:RANG 5")
    twin.engine.handle("channel3:range 7")
    assert twin.ranges == {1: 5.0, 3: 7.0}
    assert twin.engine.handle("CHAN1:RANG?") == nr3(5)
    assert twin.engine.handle("CHANNEL3:RANG?") == nr3(7)
    assert drain(twin.engine) == []


@pytest.mark.parametrize("line", ["CHAN5:RANG 1", "CHAN0:RANG 1", "OUTP2 ON", "SOUR1:CURR 1"])
def test_suffix_out_of_range_or_not_allowed(twin, line):
    assert twin.engine.handle(line) is None
    assert drain(twin.engine) == [-114]
    assert twin.ranges == {} and twin.current == 0.0 and not twin.output


def test_fixed_suffix_in_a_pattern():
    engine = ScpiEngine(IDN)
    engine.command("DIGital:PIN1:FUNCtion", lambda a, q: "DIO", set=False)
    assert engine.handle("DIG:PIN1:FUNC?") == "DIO"
    assert engine.handle("DIG:PIN:FUNC?") == "DIO"
    assert engine.handle("DIG:PIN2:FUNC?") is None
    assert drain(engine) == [-114]


def test_setting_and_query_forms_exist_only_when_registered(twin):
    for line in ["MEAS:CURR 1", "OUTP:PROT:CLE?", "*IDN", "*ESR", "*CLS?", "*TRG?", "*XYZ", "DIAG:ECHO?"]:
        assert twin.engine.handle(line) is None, line
    assert drain(twin.engine) == [-113] * 8
    assert twin.engine.handle("*TRG;OUTP:PROT:CLE") is None
    assert (twin.triggers, twin.clears) == (1, 1)


def test_mnemonic_longer_than_twelve_characters(twin):
    assert twin.engine.handle("SOURCEXXXXXXX:CURR 1") is None
    assert drain(twin.engine) == [-112]


# --- compound messages -------------------------------------------------------------------

def test_compound_header_continues_the_current_path(twin):
    # MEAS:VOLT? leaves the path at MEAS, so CURR? is MEAS:CURR?, not the current setting.
    assert twin.engine.handle("MEAS:VOLT?;CURR?") == f"{nr3(MEASURED_VOLTS)};{nr3(MEASURED_AMPS)}"
    twin.engine.handle("CHAN2:RANG 5;OFFS 0.5")
    assert twin.offsets == {2: 0.5}
    twin.engine.handle("SOUR:VOLT 5;CURR 2")
    assert (twin.voltage, twin.current) == (5.0, 2.0)
    assert drain(twin.engine) == []


def test_leading_colon_returns_to_root(twin):
    twin.engine.handle("CURR 3")
    assert twin.engine.handle(":MEAS:VOLT?;:CURR?") == f"{nr3(MEASURED_VOLTS)};{nr3(3)}"
    twin.engine.handle(":VOLT 5;:CURR 2")
    assert (twin.voltage, twin.current) == (5.0, 2.0)
    twin.engine.handle("OUTP:PROT:CLE;:OUTP ON")
    assert twin.clears == 1 and twin.output
    assert drain(twin.engine) == []


def test_path_is_kept_across_common_commands_and_reset_by_a_new_line(twin):
    assert twin.engine.handle("MEAS:VOLT?;*OPC?;CURR?") == f"{nr3(MEASURED_VOLTS)};1;{nr3(MEASURED_AMPS)}"
    twin.engine.handle("MEAS:VOLT?")
    assert twin.engine.handle("CURR?") == nr3(0)


def test_relative_header_is_not_retried_from_the_root(twin):
    assert twin.engine.handle("SOUR:VOLT 5;SOUR:CURR 2") is None
    assert (twin.voltage, twin.current) == (5.0, 0.0)
    assert drain(twin.engine) == [-113]


def test_several_queries_are_joined_with_semicolons(twin):
    twin.engine.handle("CURR 1.5;VOLT 12;OUTP ON")
    assert twin.engine.handle("CURR?;VOLT?;OUTP?;TRIG:SOUR?") == f"{nr3(1.5)};{nr3(12)};1;IMM"


def test_error_stops_the_line_and_drops_its_responses(twin):
    assert twin.engine.handle("CURR 2;BOGUS;VOLT 7") is None
    assert (twin.current, twin.voltage) == (2.0, 0.0)
    assert twin.engine.handle("CURR?;BOGUS") is None
    assert twin.engine.handle("CURR 1;CURR 30;CURR 3") is None
    assert twin.current == 1.0
    assert drain(twin.engine) == [-113, -113, -222]


@pytest.mark.parametrize("line", ["", "   ", "\t\r"])
def test_empty_line_is_silent(twin, line):
    assert twin.engine.handle(line) is None
    assert twin.engine.handle("SYST:ERR:COUN?") == "0"


def test_white_space_around_headers_separators_and_parameters(twin):
    assert twin.engine.handle("  CURR\t2 ;  VOLT   3   \r") is None
    assert (twin.current, twin.voltage) == (2.0, 3.0)
    assert drain(twin.engine) == []


# --- parameters --------------------------------------------------------------------------

def test_parameters_are_split_at_commas_outside_strings_and_expressions(twin):
    twin.engine.handle("DIAG:ECHO 1, 'a,b;c' ,(@1,2:3), 5 V,#H1F, ON")
    assert twin.echoed == ["1", "'a,b;c'", "(@1,2:3)", "5 V", "#H1F", "ON"]


def test_strings_keep_commas_semicolons_and_doubled_quotes(twin):
    twin.engine.handle('DISP:TEXT "a,b;c"')
    assert twin.text == "a,b;c"
    twin.engine.handle("DISP:TEXT 'it''s'")
    assert twin.text == "it's"
    twin.engine.handle('DISP:TEXT "say ""hi"""')
    assert twin.engine.handle("DISP:TEXT?") == '"say ""hi"""'
    assert drain(twin.engine) == []


def test_unterminated_string_runs_the_units_before_it(twin):
    assert twin.engine.handle('CURR 1;DISP:TEXT "abc') is None
    assert twin.current == 1.0 and twin.text == ""
    assert drain(twin.engine) == [-151]


def test_block_data_is_not_accepted(twin):
    assert twin.engine.handle("VOLT 1;DISP:TEXT #15a;b'c") is None
    assert twin.voltage == 1.0 and twin.text == ""
    assert drain(twin.engine) == [-168]


@pytest.mark.parametrize("line", [
    "CURR 1 2", "CURR 1,", "CURR ,1", "CURR ?", "CURR? ?", "SOUR::CURR 1", "CURR: 1", "CURR,1",
    ":*IDN?", "DIAG:ECHO (1", "DIAG:ECHO 1)", "DIAG:ECHO 'a'b", "CURR 1.5.3", "CURR 1;",
])
def test_syntax_errors(twin, line):
    assert twin.engine.handle(line) is None
    assert drain(twin.engine) == [-102]


def test_empty_unit_between_semicolons_stops_the_line(twin):
    assert twin.engine.handle("CURR 1;;VOLT 2") is None
    assert (twin.current, twin.voltage) == (1.0, 0.0)
    assert drain(twin.engine) == [-102]


@pytest.mark.parametrize("line, code", [
    ("OUTP:PROT:CLE 1", -108), ("CURR 1,2", -108), ("MEAS:CURR? 1", -108), ("*CLS 1", -108),
    ("*TRG 1", -108), ("CURR", -109), ("OUTP", -109), ("*ESE", -109), ("LIST:CURR", -109),
    ("CURR 20.5", -222), ("CURR -1", -222), ("LIST:CURR 1,25", -222), ("*ESE 256", -222),
    ("VOLT MIN", -224), ("VOLT DEF", -224), ("OUTP MAYBE", -224), ("TRIG:SOUR IMME", -224),
    ("CURR ABC", -104), ("CURR MAXI", -104), ("CURR 'x'", -104), ("OUTP 'ON'", -104),
    ("TRIG:SOUR 1", -104), ("DISP:TEXT abc", -104),
    ("CURR 1 V", -131), ("CHAN:RANG 5 V", -138), ("LIST:CURR 1,2,3,4,5", -223),
])
def test_parameter_errors(twin, line, code):
    assert twin.engine.handle(line) is None
    assert drain(twin.engine) == [code]
    assert twin.current == 0.0 and twin.levels == [] and twin.engine.handle("*ESE?") == "0"


@pytest.mark.parametrize("text, amps", [
    ("5", 5.0), ("-0", 0.0), ("+.5", 0.5), ("1e-3", 1e-3), ("1.E1", 10.0), ("1.5 E -1", 0.15),
    ("2.5A", 2.5), ("1 A", 1.0), ("30MA", 0.03), ("30 ma", 0.03), ("1500 mA", 1.5), ("#H0A", 10.0),
    ("#b101", 5.0), ("#Q17", 15.0), ("MIN", 0.0), ("MAX", 20.0), ("maximum", 20.0), ("DEF", 1.0),
    ("Default", 1.0),
])
def test_numeric_values_units_and_keywords(twin, text, amps):
    twin.engine.handle("CURR 7")
    twin.engine.handle(f"CURR {text}")
    assert drain(twin.engine) == []
    assert twin.current == pytest.approx(amps)


def test_query_with_a_parameter(twin):
    assert twin.engine.handle("CURR? MAX") == nr3(20)
    assert twin.engine.handle("CURR? MIN;CURR?") == f"{nr3(0)};{nr3(0)}"


@pytest.mark.parametrize("text, unit, value", [
    ("1 MHZ", "HZ", 1e6), ("1 MAHZ", "Hz", 1e6), ("2 kHz", "HZ", 2e3), ("1 MOHM", "OHM", 1e6),
    ("5 mV", "V", 5e-3), ("1 MAV", "V", 1e6), ("3 UA", "A", 3e-6), ("4 K", "K", 4.0), ("4 MK", "K", 4e-3),
])
def test_suffix_multipliers(text, unit, value):
    assert parse_number([text], units=unit) == pytest.approx(value)


def test_suffix_without_units_is_not_allowed():
    with pytest.raises(ScpiError) as error:
        parse_number(["5 V"])
    assert error.value.code == -138


@pytest.mark.parametrize("text, state", [
    ("ON", True), ("off", False), ("1", True), ("0", False), ("2", True), ("-1", True),
    ("0.4", False), ("0.5", True),
])
def test_booleans(twin, text, state):
    twin.engine.handle(f"OUTP {'OFF' if state else 'ON'}")
    twin.engine.handle(f"OUTP {text}")
    assert twin.output is state
    assert twin.engine.handle("OUTP?") == ("1" if state else "0")


@pytest.mark.parametrize("text, choice", [("bus", "BUS"), ("IMMEDIATE", "IMM"), ("imm", "IMM"), ("External", "EXT")])
def test_choices_return_the_short_form(twin, text, choice):
    twin.engine.handle("TRIG:SOUR BUS" if choice != "BUS" else "TRIG:SOUR EXT")
    twin.engine.handle(f"TRIG:SOUR {text}")
    assert twin.source == choice


def test_choice_table_and_suffixed_choice():
    assert parse_choice(["neg"], 0, {"POSitive": "+", "NEGative": "-"}) == "-"
    assert parse_choice(["transient1"], 0, ["BUS", "TRANsient1"]) == "TRAN1"
    with pytest.raises(ScpiError) as error:
        parse_choice(["TRAN"], 0, ["TRANsient1"])
    assert error.value.code == -224


def test_list_of_numbers(twin):
    twin.engine.handle("LIST:CURR 1, 2.5,3 A,30MA")
    assert twin.levels == pytest.approx([1.0, 2.5, 3.0, 0.03])
    assert twin.engine.handle("LIST:CURR?") == ",".join(nr3(v) for v in [1.0, 2.5, 3.0, 0.03])
    assert parse_list(["0", "1", "2"], 1) == [1.0, 2.0]


# --- error queue and status --------------------------------------------------------------

def test_error_queue_is_first_in_first_out(twin):
    for line in ["BOGUS", "CURR 99", "CURR x"]:
        twin.engine.handle(line)
    assert twin.engine.handle("SYST:ERR:COUN?") == "3"
    assert twin.engine.handle("SYST:ERR?") == '-113,"Undefined header"'
    assert twin.engine.handle("SYSTEM:ERROR:NEXT?") == '-222,"Data out of range"'
    assert twin.engine.handle("syst:err?") == '-104,"Data type error"'
    assert twin.engine.handle("SYST:ERR?") == '+0,"No error"'
    assert twin.engine.handle("SYST:ERR:COUN?") == "0"


def test_error_text_is_a_quoted_string():
    engine = ScpiEngine(IDN)
    engine.push_error(101, 'Device "x" failed')
    assert engine.handle("SYST:ERR?") == '+101,"Device ""x"" failed"'


def test_error_queue_overflow_replaces_the_newest_entry():
    engine = ScpiEngine(IDN)
    for i in range(ERROR_QUEUE_SIZE + 5):
        engine.push_error(-300 - i, f"error {i}")
    assert engine.handle("SYST:ERR:COUN?") == str(ERROR_QUEUE_SIZE)
    assert drain(engine) == [-300 - i for i in range(ERROR_QUEUE_SIZE - 1)] + [-350]


@pytest.mark.parametrize("cause, bit", [
    ("BOGUS", 32), ("CURR 99", 16), (-350, 8), (-410, 4), (101, 8), (-500, 128), ("*OPC", 1),
])
def test_event_status_bits_are_read_and_cleared(twin, cause, bit):
    if isinstance(cause, str):
        twin.engine.handle(cause)
    else:
        twin.engine.push_error(cause, "event")
    assert twin.engine.event_status == bit
    assert twin.engine.handle("*ESR?") == str(bit)
    assert twin.engine.handle("*ESR?") == "0"


def test_status_byte_summaries(twin):
    engine = twin.engine
    assert engine.handle("*STB?") == "0"
    engine.handle("BOGUS")
    assert engine.handle("*STB?") == "4"  # error queue not empty; ESR not enabled
    engine.handle("*ESE 32")
    assert engine.handle("*ESE?") == "32"
    assert engine.handle("*STB?") == "36"  # + ESB
    engine.handle("*SRE #H20")
    assert engine.handle("*SRE?") == "32"
    assert engine.handle("*STB?") == "100"  # + MSS
    engine.handle("*ESR?")
    assert engine.handle("*STB?") == "4"
    engine.handle("SYST:ERR?")
    assert engine.status_byte == 0


def test_service_request_enable_ignores_bit_six(twin):
    twin.engine.handle("*SRE 255")
    assert twin.engine.handle("*SRE?") == "191"


def test_clear_status_empties_queue_and_esr_but_keeps_enables(twin):
    twin.engine.handle("*ESE 255;BOGUS")
    twin.engine.handle("CURR 99")
    twin.engine.handle("*CLS")
    assert twin.engine.handle("*STB?;*ESR?;*ESE?") == "0;0;255"
    assert twin.engine.handle("SYST:ERR?") == '+0,"No error"'


def test_operation_complete_and_wait(twin):
    assert twin.engine.handle("*OPC?") == "1"
    assert twin.engine.handle("*WAI") is None
    assert twin.engine.event_status == 0
    twin.engine.handle("*OPC")
    assert twin.engine.event_status == 1


# --- registration and formatting ---------------------------------------------------------

@pytest.mark.parametrize("pattern", ["CURRent[:LEVel", "curr", "CURRent::LEVel", "CURRent:LEVel?", "*T-R",
                                     "CURRent[LEVel]"])
def test_bad_patterns_are_refused(pattern):
    with pytest.raises(ValueError):
        ScpiEngine(IDN).command(pattern, lambda a, q: None)


def test_suffix_limit_must_name_a_suffix_of_the_pattern():
    with pytest.raises(ValueError):
        ScpiEngine(IDN).command(":CHANnel<n>:RANGe", lambda a, q, n: None, suffix_max={"m": 4})


def test_later_registration_takes_precedence():
    engine = ScpiEngine(IDN)
    engine.command("SYSTem:ERRor[:NEXT]", lambda a, q: '+0,"Custom"', set=False)
    engine.command("*IDN", lambda a, q: "other", set=False)
    assert engine.handle("SYST:ERR?;*IDN?") == '+0,"Custom";other'


def test_number_and_boolean_formats():
    assert format_number(12.345) == "+1.23450000E+01"
    assert format_number(-0.001) == "-1.00000000E-03"
    assert format_number(math.nan) == "+9.91000000E+37"
    assert format_number(-math.inf) == "-9.90000000E+37"
    assert (format_bool(True), format_bool(False)) == ("1", "0")
