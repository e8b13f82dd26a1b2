"""Ctrl-C and SIGTERM while quenchlab runs a recipe or a library: an interrupt interrupts, it
never destroys.

- While a runner is in charge (`Interrupts.running(engine)`), the first signal is noted and,
  if a run is in progress, the RunEngine is paused at once (whatever the run is doing: arming,
  firing, collecting, writing); the runner then aborts the run, so its cleanup runs, and
  records the signal as the run's reason. Between runs the runner looks at `received` before
  it starts the next one.
- Once a run's plan has cleared its checkpoint (`bps.clear_checkpoint`: its data are taken,
  what is left is closing up), the signal does not pause it: the run completes and is
  recorded as such, and no next run starts.
- Outside a runner and outside `deferred()` (connecting to the instruments), the first signal
  raises `Interrupted` in the main thread at once; the `with` blocks around the instruments
  make the line safe. Inside `deferred()` (closing the instruments) it is noted only.
- Later signals are noted only: they never cut short the safe state the first one started.
A signal ignored when quenchlab started (a background job of a non-interactive shell ignores
SIGINT) stays ignored. Signals are handled in the main thread only; elsewhere this does nothing.
"""
import signal
import threading
from contextlib import contextmanager, suppress

from bluesky import RunEngine
from bluesky.run_engine import TransitionError

REASONS = {signal.SIGINT: "interrupted by the user", signal.SIGTERM: "terminated"}


class Interrupted(KeyboardInterrupt):
    """The first signal, met outside a run: `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Interrupts:
    """Installs its handlers for SIGINT and SIGTERM for the life of the `with` block."""

    def __init__(self):
        self.received: int | None = None  # the first signal's number
        self._engine: RunEngine | None = None  # the runner's RunEngine, while one is in charge
        self._deferring = False  # signals are noted, never raised
        self._finishing = False  # the run in progress has cleared its checkpoint
        self._previous: dict[int, object] = {}
        self._depth = 0  # `with` blocks entered: the handlers are installed by the outermost

    @property
    def reason(self) -> str:
        return REASONS.get(self.received, "")

    def __enter__(self) -> "Interrupts":
        self._depth += 1
        if self._depth == 1 and threading.current_thread() is threading.main_thread():
            for number in REASONS:
                if signal.getsignal(number) is not signal.SIG_IGN:
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth:
            return
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    @contextmanager
    def deferred(self):
        """Signals are noted only, for whoever looks at `received` (closing the line, a runner)."""
        deferring, self._deferring = self._deferring, True
        try:
            yield self
        finally:
            self._deferring = deferring

    @contextmanager
    def running(self, engine: RunEngine):
        """A runner is in charge of `engine`: signals pause its runs and are looked at between them."""
        self._engine, self._finishing = engine, False
        engine.msg_hook = self._follow
        try:
            with self.deferred():
                yield self
        finally:
            engine.msg_hook = None
            self._engine = None

    def unless_received(self, plan):
        """`plan`, unless a signal came before the RunEngine took it up (too early to pause it):
        the run then never begins. Looked at in the RunEngine's thread, once it is running."""
        if self.received is None:
            return (yield from plan)
        plan.close()

    def _follow(self, msg) -> None:
        """The plan's messages, as the RunEngine takes them (in its own thread)."""
        if msg.command == "clear_checkpoint":
            self._finishing = True
        elif msg.command in ("open_run", "checkpoint"):
            self._finishing = False

    def _handle(self, number: int, frame) -> None:
        if self.received is not None:
            return
        self.received = number
        if not self._deferring:
            raise Interrupted(self.reason)
        engine = self._engine
        if engine is not None and not self._finishing and not engine.state.is_idle:
            # request_pause waits for the RunEngine's loop: not in a signal handler
            threading.Thread(target=_pause, args=(engine,), daemon=True, name="interrupt").start()


def _pause(engine: RunEngine) -> None:
    """Pause now; a run that has just ended can no longer be paused (the runner sees `received`)."""
    with suppress(TransitionError, RuntimeError):
        engine.request_pause(defer=False)
