"""Protocol-only SCPI command engine for quenchlab's instrument twins.

A twin creates a :class:`ScpiEngine`, registers its commands with :meth:`ScpiEngine.command`
and passes every received program message (one line, terminator removed) to
:meth:`ScpiEngine.handle`, sending back what it returns. Syntax follows IEEE 488.2-1992 ch.7
and SCPI-1999 vol.1; error numbers and texts follow the SCPI-1999 error list. Where the
standards leave a choice, quenchlab's engine does this:

* A line stops at its first error: the units before it have run, the rest of the line is
  discarded and nothing is sent back for the line, not even earlier query responses.
* Arbitrary block data (``#NDDD...``) is not accepted (-168 "Block data not allowed"): a
  line-based transport cannot carry a binary payload.
* The current path after a header is that header as typed, minus its last mnemonic; omitted
  optional nodes never enter it (IEEE 488.2 Appendix A).
* A numeric suffix on a mnemonic that takes none is -114 "Header suffix out of range".
"""
from __future__ import annotations

import math
import re
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

Handler = Callable[..., "str | None"]

ERROR_QUEUE_SIZE = 30

# IEEE 488.2 sec.7.4.1.2: <white space> is any byte 0x00-0x09 or 0x0B-0x20.
_WHITESPACE = "".join(chr(c) for c in range(0x21) if c != 0x0A)
_WS = r"[\x00-\x09\x0b-\x20]"

_MNEMONIC = r"[A-Za-z]\w*"  # IEEE 488.2 sec.7.6.1.2 (with re.ASCII)
_HEADER = re.compile(rf"\*{_MNEMONIC}\??|:?{_MNEMONIC}(?::{_MNEMONIC})*\??", re.ASCII)
_MAX_MNEMONIC = 12  # IEEE 488.2 sec.7.6.1.4
_UNIT = r"[A-Za-z]+(?:-?\d+)?"
_NUMBER = re.compile(  # <DECIMAL NUMERIC PROGRAM DATA> [<SUFFIX PROGRAM DATA>], sec.7.7.2-7.7.3
    rf"(?P<mantissa>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:{_WS}*[Ee]{_WS}*[+-]?\d+)?)"
    rf"(?:{_WS}*(?P<suffix>/?{_UNIT}(?:[./]{_UNIT})*))?",
    re.ASCII,
)
_NON_DECIMAL = re.compile(r"#(?:[Hh][0-9A-Fa-f]+|[Qq][0-7]+|[Bb][01]+)")  # sec.7.7.4
_RADIX = {"H": 16, "Q": 8, "B": 2}
_CHARACTER = re.compile(_MNEMONIC, re.ASCII)  # sec.7.7.1
_STRING = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")  # sec.7.7.5
_EXPRESSION = re.compile(r"\([^'\"]*\)")  # sec.7.7.7; parentheses balanced by the splitter
_DATA = (_STRING, _EXPRESSION, _CHARACTER, _NUMBER, _NON_DECIMAL)

_PATTERN_NODE = re.compile(r"(\[)?([A-Z]+[a-z]*)(?:<([A-Za-z_]\w*)>|(\d+))?(?(1)\])")
_CHOICE = re.compile(r"([A-Z]+)([a-z]*)(\d*)")

# IEEE 488.2 sec.7.7.3.4 suffix multipliers; "M" is milli except in MHZ and MOHM.
_MULTIPLIERS = {"EX": 1e18, "PE": 1e15, "T": 1e12, "G": 1e9, "MA": 1e6, "K": 1e3,
                "M": 1e-3, "U": 1e-6, "N": 1e-9, "P": 1e-12, "F": 1e-15, "A": 1e-18}

# Status bits: IEEE 488.2 sec.11.5.1 (event status register) and sec.11.2 (status byte);
# bit 2 of the status byte is SCPI's error/event queue summary.
OPC, RQC, QYE, DDE, EXE, CME, URQ, PON = 1, 2, 4, 8, 16, 32, 64, 128
EAV, QUES, ESB, MSS, OPER = 4, 8, 32, 64, 128
# ESR bit set by an error or event number, keyed by its hundreds (SCPI-1999 error classes).
_EVENT_CLASS_BITS = {1: CME, 2: EXE, 3: DDE, 4: QYE, 5: PON, 6: URQ, 7: RQC, 8: OPC}


class ScpiError(Exception):
    """An SCPI error number and text, e.g. ``ScpiError(-222, "Data out of range")``."""

    def __init__(self, code: int, message: str):
        super().__init__(f"{code},{message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool
    suffix: str | None  # name of a numeric suffix passed to the handler
    fixed: int | None  # a suffix written into the pattern, e.g. PIN1


@dataclass(frozen=True)
class _Command:
    nodes: tuple[_Node, ...]
    handler: Handler
    set: bool
    query: bool
    max_args: int | None
    max_query_args: int | None
    suffix_max: Mapping[str, int]

    def serves(self, query: bool) -> bool:
        return self.query if query else self.set

    def suffixes(self, matched: list[tuple[_Node, str]]) -> dict[str, int] | None:
        """Suffix values of a match, or None when one is out of range (SCPI-1999 vol.1 ch.6:
        an omitted numeric suffix means 1)."""
        values = {}
        for node, digits in matched:
            value = int(digits) if digits else 1
            if node.suffix is not None:
                if not 1 <= value <= self.suffix_max.get(node.suffix, math.inf):
                    return None
                values[node.suffix] = value
            elif (node.fixed is None and digits) or (node.fixed is not None and value != node.fixed):
                return None
        return values


class ScpiEngine:
    """Parses program messages and runs the registered handlers; keeps the error queue and the
    IEEE 488.2 status registers. Built in: *IDN?, *CLS, *ESE, *ESE?, *ESR?, *SRE, *SRE?, *STB?,
    *OPC, *OPC?, *WAI, *TST? (the self-test passes: 0), *OPT? (`options`), SYSTem:ERRor[:NEXT]?,
    SYSTem:ERRor:COUNt?, SYSTem:VERSion? (`version`, the SCPI year the instrument follows), and
    with `status()` the SCPI STATus:OPERation and :QUEStionable registers.

    `signed`: integer responses carry their sign, "+0" (IEEE 488.2 sec.8.7.2 allows either;
    each instrument's manual shows which it sends). An error queue belongs to the `session` a
    message came on (`handle(line, session)`: one per LAN connection on instruments that keep
    them apart); the status registers are the instrument's."""

    def __init__(self, idn: str, *, signed: bool = False, version: str = "1999.0", options: str = "0"):
        self._commands: list[_Command] = []
        self._common: dict[str, _Command] = {}
        self._queues: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._default_queue: deque[tuple[int, str]] = deque()
        self._session = None
        self._esr = self._ese = self._sre = 0
        self._registers: dict[str, _StatusRegister] = {}
        self.signed = signed
        self.command("*IDN", lambda args, query: idn, set=False)
        self.command("*CLS", lambda args, query: self.clear_status(), query=False, max_args=0)
        self.command("*ESE", self._event_enable)
        self.command("*ESR", self._read_events, set=False)
        self.command("*SRE", self._service_enable)
        self.command("*STB", lambda args, query: self.integer(self.status_byte), set=False)
        self.command("*OPC", self._operation_complete, max_args=0)
        self.command("*WAI", lambda args, query: None, query=False, max_args=0)
        self.command("*TST", lambda args, query: self.integer(0), set=False)
        self.command("*OPT", lambda args, query: options, set=False)
        self.command("SYSTem:ERRor[:NEXT]", self._next_error, set=False)
        self.command("SYSTem:ERRor:COUNt", lambda args, query: self.integer(len(self._errors)), set=False)
        self.command("SYSTem:VERSion", lambda args, query: version, set=False)

    def integer(self, value: int) -> str:
        """<NR1> response data, signed if the instrument signs it."""
        return f"{value:+d}" if self.signed else str(value)

    @property
    def _errors(self) -> deque[tuple[int, str]]:
        """The error queue of the session being served."""
        if self._session is None:
            return self._default_queue
        return self._queues.setdefault(self._session, deque())

    def status(self, *, operation: Callable[[], int], questionable: Callable[[], int],
               bits: tuple[int, int] = (15, 15)) -> None:
        """The SCPI status registers (SCPI-1999 vol.1 ch.9; STATus:OPERation and STATus:QUEStionable,
        each [:EVENt]?, :CONDition?, :ENABle, :PTRansition and :NTRansition) over the instrument's
        `operation()` and `questionable()` conditions, `bits` defined in each; STATus:PRESet. Their
        summaries are bits 7 and 3 of the status byte. Transitions latch when the instrument is
        addressed (a change between two messages and back is not seen)."""
        for name, condition, defined in (("OPERation", operation, bits[0]), ("QUEStionable", questionable, bits[1])):
            register = self._registers[name] = _StatusRegister(condition, (1 << defined) - 1)
            self.command(f"STATus:{name}[:EVENt]", lambda args, query, r=register: self.integer(r.take_event()),
                         set=False)
            self.command(f"STATus:{name}:CONDition", lambda args, query, r=register: self.integer(r.condition()),
                         set=False)
            for part in ("ENABle", "PTRansition", "NTRansition"):
                self.command(f"STATus:{name}:{part}", self._register_part(register, part[:3].lower()))
        self.command("STATus:PRESet", self._preset_status, query=False, max_args=0)

    def _preset_status(self, args, query):
        for register in self._registers.values():
            register.preset()

    def _register_part(self, register: _StatusRegister, part: str) -> Handler:
        def handler(args, query):
            if query:
                return self.integer(getattr(register, part))
            setattr(register, part, _register_value(args, 65535))
        return handler

    def command(self, pattern: str, handler: Handler, *, set: bool = True, query: bool = True,
                max_args: int | None = 1, max_query_args: int | None = 0,
                suffix_max: Mapping[str, int] | None = None) -> None:
        """Register ``handler(args, query, **suffixes) -> str | None`` for a header pattern.

        *pattern* uses the SCPI-1999 vol.1 ch.6 notation: "[SOURce:]CURRent[:LEVel]",
        ":CHANnel<n>:RANGe" (suffix passed as keyword n, 1 when omitted), "*TRG". *set* and
        *query* say which forms exist; *max_args* and *max_query_args* bound their parameter
        counts (None: no bound; an event such as *TRG wants max_args=0, a list max_args=None).
        *suffix_max* gives the highest value of a named suffix. A later registration of a
        matching header takes precedence over an earlier one.
        """
        nodes = _parse_pattern(pattern)
        if suffix_max and suffix_max.keys() - {node.suffix for node in nodes}:
            raise ValueError(f"suffix_max names a suffix that {pattern!r} lacks")
        entry = _Command(nodes, handler, set, query, max_args, max_query_args, dict(suffix_max or {}))
        if nodes:
            self._commands.append(entry)
        else:
            self._common[pattern.upper()] = entry

    def handle(self, line: str, session: object = None) -> str | None:
        """Run one program message (come on `session`); return its response message (responses
        joined with ";") or None. IEEE 488.2 sec.7.3: units run in order; the path starts at the
        root."""
        self._session = session
        for register in self._registers.values():
            register.latch()
        if not line.strip(_WHITESPACE):
            return None
        responses: list[str] = []
        path: list[tuple[str, str]] = []
        try:
            for unit in _message_units(line):
                response, path = self._execute(*_parse_unit(unit), path)
                if response is not None:
                    responses.append(response)
        except ScpiError as error:
            self.push_error(error.code, error.message)
            return None
        return ";".join(responses) if responses else None

    def push_error(self, code: int, message: str) -> None:
        """Queue an error and set its event status bit. SCPI-1999: when the queue is full the
        newest entry is replaced by -350 "Queue overflow" and the new error is dropped."""
        self._esr |= _EVENT_CLASS_BITS.get(-code // 100, 0) if code < 0 else DDE
        if len(self._errors) < ERROR_QUEUE_SIZE:
            self._errors.append((code, message))
        else:
            self._errors[-1] = (-350, "Queue overflow")

    @property
    def event_status(self) -> int:
        """The standard event status register, without clearing it (*ESR? clears)."""
        return self._esr

    @property
    def status_byte(self) -> int:
        """*STB?: bit 2 error queue not empty, bit 5 ESB = ESR & ESE, bit 6 MSS = summary of
        the other bits & SRE (IEEE 488.2 sec.11.2); with `status()`, bits 3 and 7 the QUES and
        OPER summaries. MAV is not modelled and reads 0."""
        summary = (EAV if self._errors else 0) | (ESB if self._esr & self._ese else 0)
        for name, bit in (("QUEStionable", QUES), ("OPERation", OPER)):
            if name in self._registers and self._registers[name].summary():
                summary |= bit
        return summary | (MSS if summary & self._sre else 0)

    def _execute(self, header: str, args: list[str], path: list[tuple[str, str]]
                 ) -> tuple[str | None, list[tuple[str, str]]]:
        """Run one unit; return its response and the new current path (SCPI-1999 vol.1 ch.6,
        IEEE 488.2 Appendix A: a header without a leading ":" continues the current path, a
        leading ":" starts from the root, common commands leave the path alone)."""
        query = header.endswith("?")
        name = header.removesuffix("?")
        if name.startswith("*"):
            command, suffixes = self._common.get(name.upper()), {}
            if command is None or not command.serves(query):
                raise ScpiError(-113, "Undefined header")
        else:
            typed = [_split_suffix(mnemonic) for mnemonic in name.removeprefix(":").split(":")]
            nodes = typed if name.startswith(":") else path + typed
            command, suffixes = self._resolve(nodes, query)
            path = nodes[:-1]
        limit = command.max_query_args if query else command.max_args
        if limit is not None and len(args) > limit:
            raise ScpiError(-108, "Parameter not allowed")
        return command.handler(args, query, **suffixes), path

    def _resolve(self, nodes: list[tuple[str, str]], query: bool) -> tuple[_Command, dict[str, int]]:
        suffix_out_of_range = False
        for command in reversed(self._commands):
            matched = _match(command.nodes, nodes) if command.serves(query) else None
            if matched is None:
                continue
            suffixes = command.suffixes(matched)
            if suffixes is not None:
                return command, suffixes
            suffix_out_of_range = True
        if suffix_out_of_range:
            raise ScpiError(-114, "Header suffix out of range")
        raise ScpiError(-113, "Undefined header")

    # built-in common commands and SYSTem:ERRor (IEEE 488.2 ch.10, SCPI-1999 SYSTem:ERRor)
    def clear_status(self) -> None:
        """*CLS: the error queue and the event registers."""
        self._errors.clear()
        self._esr = 0
        for register in self._registers.values():
            register.event = 0

    def _event_enable(self, args, query):
        if query:
            return self.integer(self._ese)
        self._ese = _register_value(args)

    def _service_enable(self, args, query):
        if query:
            return self.integer(self._sre)
        self._sre = _register_value(args) & ~MSS  # bit 6 of the SRE is ignored

    def _read_events(self, args, query):
        value, self._esr = self._esr, 0
        return self.integer(value)

    def _operation_complete(self, args, query):
        """Every operation completes at once, so *OPC sets OPC and *OPC? answers 1."""
        if query:
            return "1"
        self._esr |= OPC

    def _next_error(self, args, query):
        code, message = self._errors.popleft() if self._errors else (0, "No error")
        return f"{code:+d},{format_string(message)}"


class _StatusRegister:
    """An SCPI status register (SCPI-1999 vol.1 ch.9): the condition, the event latched from its
    transitions through the transition filters, and the enable mask of its summary bit."""

    def __init__(self, condition: Callable[[], int], defined: int):
        self.condition, self.defined = condition, defined
        self.event = self.ena = self.ntr = 0
        self.ptr = defined
        self._last = 0

    def latch(self) -> None:
        now = self.condition()
        self.event |= (now & ~self._last & self.ptr) | (~now & self._last & self.ntr)
        self._last = now

    def take_event(self) -> int:
        """The event register, cleared by reading it."""
        self.latch()
        value, self.event = self.event, 0
        return value

    def summary(self) -> bool:
        return bool(self.event & self.ena)

    def preset(self) -> None:
        """STATus:PRESet: enable and negative filters cleared, every defined positive one set."""
        self.ena, self.ntr, self.ptr = 0, 0, self.defined


# --- parsing -----------------------------------------------------------------------------

def _parse_pattern(pattern: str) -> tuple[_Node, ...]:
    """Nodes of a header pattern; () for a common command such as "*TRG"."""
    if pattern.startswith("*"):
        if not re.fullmatch(r"\*[A-Za-z]+", pattern):
            raise ValueError(f"bad SCPI common command {pattern!r}")
        return ()
    pieces = pattern.replace("[:", ":[").replace(":]", "]:").removeprefix(":").split(":")
    nodes = []
    for piece in pieces:
        match = _PATTERN_NODE.fullmatch(piece)
        if match is None:
            raise ValueError(f"bad SCPI header pattern {pattern!r}")
        bracket, mnemonic, suffix, fixed = match.groups()
        short = mnemonic.rstrip("abcdefghijklmnopqrstuvwxyz")
        nodes.append(_Node(short, mnemonic.upper(), bool(bracket), suffix, fixed and int(fixed)))
    return tuple(nodes)


def _split_suffix(mnemonic: str) -> tuple[str, str]:
    """("CHAN", "2") for "chan2": the upper-cased mnemonic and its numeric suffix."""
    stem = mnemonic.rstrip("0123456789")
    return stem.upper(), mnemonic[len(stem):]


def _match(pattern: tuple[_Node, ...], nodes: list[tuple[str, str]]) -> list[tuple[_Node, str]] | None:
    """Pair header nodes with pattern nodes, skipping optional ones (SCPI-1999 vol.1 ch.6:
    only the exact short or long form of a mnemonic is accepted)."""
    if not pattern:
        return [] if not nodes else None
    node, rest = pattern[0], pattern[1:]
    if nodes and nodes[0][0] in (node.short, node.long):
        tail = _match(rest, nodes[1:])
        if tail is not None:
            return [(node, nodes[0][1]), *tail]
    if node.optional:
        tail = _match(rest, nodes)
        if tail is not None:
            return [(node, ""), *tail]
    return None


def _message_units(line: str) -> Iterator[str]:
    """Yield the units of a program message, split at ";" outside strings (IEEE 488.2
    sec.7.4.1). Lazy, so the units before a malformed one have run when it is found."""
    start, quote = 0, None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and line[i + 1:i + 2].isdigit():
            raise ScpiError(-168, "Block data not allowed")
        elif char == ";":
            yield line[start:i]
            start = i + 1
    if quote:
        raise ScpiError(-151, "Invalid string data")
    yield line[start:]


def _parse_unit(unit: str) -> tuple[str, list[str]]:
    """Header and parameters of one message unit (IEEE 488.2 sec.7.6-7.7): the header ends at
    white space, parameters are separated by commas."""
    header, *data = re.split(f"{_WS}+", unit.strip(_WHITESPACE), maxsplit=1)
    if not _HEADER.fullmatch(header):
        raise ScpiError(-102, "Syntax error")
    if any(len(m) > _MAX_MNEMONIC for m in re.findall(r"\w+", header, re.ASCII)):
        raise ScpiError(-112, "Program mnemonic too long")
    args = _split_parameters(data[0]) if data else []
    if not all(any(form.fullmatch(arg) for form in _DATA) for arg in args):
        raise ScpiError(-102, "Syntax error")
    return header, args


def _split_parameters(data: str) -> list[str]:
    """Split program data at commas outside strings and parenthesised expressions."""
    params, start, depth, quote = [], 0, 0, None
    for i, char in enumerate(data):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "()":
            depth += 1 if char == "(" else -1
            if depth < 0:
                raise ScpiError(-102, "Syntax error")
        elif char == "," and depth == 0:
            params.append(data[start:i])
            start = i + 1
    if depth:
        raise ScpiError(-102, "Syntax error")
    params.append(data[start:])
    return [param.strip(_WHITESPACE) for param in params]


# --- parameter helpers for handlers ------------------------------------------------------

def _argument(args: Sequence[str], index: int) -> str:
    if index >= len(args):
        raise ScpiError(-109, "Missing parameter")
    return args[index]


def _forms(mnemonic: str) -> tuple[str, str]:
    """Short and long form of a mnemonic written like "IMMediate" or "TRANsient1"."""
    match = _CHOICE.fullmatch(mnemonic)
    if match is None:
        raise ValueError(f"bad SCPI mnemonic {mnemonic!r}")
    upper, lower, digits = match.groups()
    return upper + digits, (upper + lower).upper() + digits


def _nearest_integer(value: float) -> int:
    """Round half away from zero, as instruments round numeric data to integers."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def _register_value(args: Sequence[str], highest: int = 255) -> int:
    """A status enable value: a number rounded to an integer in 0..255 (IEEE 488.2 ch.10), or
    0..`highest` for an SCPI register's 16 bits (SCPI-1999 vol.1 ch.9)."""
    value = _nearest_integer(parse_number(args))
    if not 0 <= value <= highest:
        raise ScpiError(-222, "Data out of range")
    return value


def _multiplier(suffix: str | None, unit: str | None) -> float:
    """Scale of a suffix such as "MA" for unit "A" (IEEE 488.2 sec.7.7.3, case-insensitive)."""
    if not suffix:
        return 1.0
    if unit is None:
        raise ScpiError(-138, "Suffix not allowed")
    suffix, unit = suffix.upper(), unit.upper()
    if suffix == unit:
        return 1.0
    prefix = suffix[:-len(unit)] if suffix.endswith(unit) else None
    if prefix == "M" and unit in ("HZ", "OHM"):
        return 1e6
    if prefix in _MULTIPLIERS:
        return _MULTIPLIERS[prefix]
    raise ScpiError(-131, "Invalid suffix")


def parse_number(args: Sequence[str], index: int = 0, *, minimum: float | None = None,
                 maximum: float | None = None, default: float | None = None,
                 units: str | None = None) -> float:
    """A <numeric_value> (SCPI-1999 vol.1 ch.7): <NRf> or #H/#Q/#B data, an optional unit
    suffix when *units* is given ("30 MA" = 0.03 for units="A"), or MINimum, MAXimum and
    DEFault when *minimum*, *maximum* and *default* are given (-224 otherwise). Raises -109
    when missing, -104 for other data, -222 outside [minimum, maximum]."""
    text = _argument(args, index)
    if number := _NUMBER.fullmatch(text):
        mantissa = re.sub(_WS, "", number["mantissa"])
        value = float(mantissa) * _multiplier(number["suffix"], units)
    elif _NON_DECIMAL.fullmatch(text):
        value = float(int(text[2:], _RADIX[text[1].upper()]))
    elif _CHARACTER.fullmatch(text):
        value = _keyword_value(text, {"MINimum": minimum, "MAXimum": maximum, "DEFault": default})
    else:
        raise ScpiError(-104, "Data type error")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ScpiError(-222, "Data out of range")
    return value


def _keyword_value(text: str, keywords: Mapping[str, float | None]) -> float:
    for mnemonic, value in keywords.items():
        if text.upper() in _forms(mnemonic):
            if value is None:
                raise ScpiError(-224, "Illegal parameter value")
            return float(value)
    raise ScpiError(-104, "Data type error")


def parse_bool(args: Sequence[str], index: int = 0) -> bool:
    """A <Boolean> (SCPI-1999 vol.1 ch.7): ON or OFF, or a number rounded to an integer,
    nonzero meaning ON."""
    text = _argument(args, index).upper()
    if text in ("ON", "OFF"):
        return text == "ON"
    if _CHARACTER.fullmatch(text):
        raise ScpiError(-224, "Illegal parameter value")
    return _nearest_integer(parse_number(args, index)) != 0


def parse_choice(args: Sequence[str], index: int, choices: Sequence[str] | Mapping[str, str]) -> str:
    """<CHARACTER PROGRAM DATA> matched by exact short or long form. *choices* lists mnemonics
    such as ["BUS", "IMMediate"] (the short form is returned, as SCPI responses use it) or maps
    each mnemonic to the value to return. -104 for non-character data, -224 for no match."""
    text = _argument(args, index)
    if not _CHARACTER.fullmatch(text):
        raise ScpiError(-104, "Data type error")
    table = choices if isinstance(choices, Mapping) else {c: _forms(c)[0] for c in choices}
    for mnemonic, value in table.items():
        if text.upper() in _forms(mnemonic):
            return value
    raise ScpiError(-224, "Illegal parameter value")


def parse_list(args: Sequence[str], start: int = 0, *, minimum: float | None = None,
               maximum: float | None = None, units: str | None = None,
               max_length: int | None = None) -> list[float]:
    """The numbers args[start:], e.g. LIST:CURRent 1,2,3, each checked like parse_number;
    -109 when empty, -223 "Too much data" beyond *max_length*."""
    _argument(args, start)
    if max_length is not None and len(args) - start > max_length:
        raise ScpiError(-223, "Too much data")
    return [parse_number(args, i, minimum=minimum, maximum=maximum, units=units)
            for i in range(start, len(args))]


def parse_string(args: Sequence[str], index: int = 0) -> str:
    """<STRING PROGRAM DATA> (IEEE 488.2 sec.7.7.5): the quoted text, a doubled quote standing
    for one; -104 for unquoted data."""
    text = _argument(args, index)
    if not _STRING.fullmatch(text):
        raise ScpiError(-104, "Data type error")
    return text[1:-1].replace(text[0] * 2, text[0])


def format_number(value: float, digits: int = 8) -> str:
    """<NR3> response data such as "+1.23450000E+01" (`digits` after the point); NaN and the
    infinities as SCPI's 9.91E37 and +/-9.9E37 (SCPI-1999 vol.1 ch.7)."""
    if math.isnan(value):
        value = 9.91e37
    elif math.isinf(value):
        value = math.copysign(9.9e37, value)
    return f"{value:+.{digits}E}"


def format_bool(value: bool) -> str:
    """Boolean response data: "1" or "0" (SCPI-1999 vol.1 ch.7)."""
    return "1" if value else "0"


def format_string(text: str) -> str:
    """<STRING RESPONSE DATA> (IEEE 488.2 sec.8.7): double-quoted, inner quotes doubled."""
    return '"' + text.replace('"', '""') + '"'


def stored(owner: object, attr: str, parse: Callable[[Sequence[str]], object],
           show: Callable[[object], str] = str) -> Handler:
    """A handler for a setting kept in ``owner.attr``: the setting form stores
    ``parse(args)``, the query form answers ``show(value)``."""
    def handler(args: Sequence[str], query: bool) -> str | None:
        if query:
            return show(getattr(owner, attr))
        setattr(owner, attr, parse(args))
        return None
    return handler


def one_of(choices: Sequence[str]) -> Callable[[Sequence[str]], str]:
    """A parser for :func:`stored` accepting one of *choices* (short or long form)."""
    return lambda args: parse_choice(args, 0, choices)
