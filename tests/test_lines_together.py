"""Serial lines read at the same time from one thread (devices.transport.run_together), over
real pseudo-terminals: every line's request is out before any reply is awaited, a slow line
is resent as alone, and an error is raised only once every line is done."""
import os
import pty
import select
import threading
import tty

import pytest

from quenchlab.devices.transport import SerialTransport, run_together
from quenchlab.errors import InstrumentError


class Lines:
    """Pseudo-terminals whose far ends a test thread answers: `answer(requests)` is called
    with every request received so far (line index -> list of requests) and returns the
    replies to send now (line index -> bytes)."""

    def __init__(self, count: int, answer):
        self.masters, self.transports, self.requests = [], [], {i: [] for i in range(count)}
        for i in range(count):
            master, slave = pty.openpty()
            tty.setraw(master)
            self.masters.append(master)
            self.transports.append(SerialTransport(f"line{i}", os.ttyname(slave), baudrate=9600, timeout=0.3,
                                                   retries=1))
            os.close(slave)
        self.answer, self._stop = answer, threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select(self.masters, [], [], 0.02)
            for fd in ready:
                self.requests[self.masters.index(fd)].append(os.read(fd, 1024))
            for i, reply in self.answer(self.requests).items():
                os.write(self.masters[i], reply)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for io, master in zip(self.transports, self.masters):
            io.close()
            os.close(master)


@pytest.fixture
def lines(request):
    made = []

    def make(count, answer):
        made.append(Lines(count, answer))
        return made[-1]
    yield make
    for each in made:
        each.close()


def test_every_line_is_asked_before_any_reply_is_awaited(lines):
    """Each line is answered only once both requests are in: read one after another, the
    first would time out and be resent."""
    answered = set()

    def answer(requests):
        if not all(requests.values()):
            return {}
        replies = {i: b"value%d\r" % i for i in requests if i not in answered}
        answered.update(replies)
        return replies
    both = lines(2, answer)
    a, b = both.transports
    assert run_together([(a, a.query_steps("A")), (b, b.query_steps("B"))]) == ["value0", "value1"]
    assert not a.take_events() and not b.take_events()  # nothing resent


def test_steps_on_one_line_go_one_after_another_the_values_in_order(lines):
    pair = lines(2, echo)
    bus, other = pair.transports
    values = run_together([(bus, bus.query_steps("U1")), (other, other.query_steps("X")), (bus, bus.query_steps("U2"))])
    assert values == ["U1!", "X!", "U2!"]


def test_a_lost_reply_is_resent_while_the_other_line_is_done(lines):
    asked = {0: 0, 1: 0}

    def answer(requests):
        replies = {}
        for i, got in requests.items():
            while got:
                got.pop(0)
                asked[i] += 1
                if i == 1 or asked[i] > 1:  # line 0 loses its first reply
                    replies[i] = b"ok%d\r" % i
        return replies
    pair = lines(2, answer)
    a, b = pair.transports
    assert run_together([(a, a.query_steps("A")), (b, b.query_steps("B"))]) == ["ok0", "ok1"]
    assert [event.what for event in a.take_events()] == ["no complete reply within 0.3 s: resent"]


def echo(requests):
    """Each request answered with itself and a '!'."""
    replies = {}
    for i, got in requests.items():
        while got:
            replies[i] = replies.get(i, b"") + got.pop(0).strip() + b"!\r"
    return replies


def recorded(steps, done: list):
    value = yield from steps
    done.append(value)
    return value


def test_an_error_is_raised_once_every_line_is_done(lines):
    """Line 0 never answers; line 1 is read to its end all the same."""
    def answer(requests):
        requests[0].clear()
        return echo({1: requests[1]})
    pair, done = lines(2, answer), []
    a, b = pair.transports
    with pytest.raises(InstrumentError, match=r"line0 at .*: no complete reply after 2 tries \(command 'A'\)"):
        run_together([(a, a.query_steps("A")), (b, recorded(b.query_steps("B"), done))])
    assert done == ["B!"]


def test_a_line_held_elsewhere_fails_as_busy_and_the_others_are_read(lines):
    pair, done = lines(2, echo), []
    a, b = pair.transports
    held, release = threading.Event(), threading.Event()

    def hold():
        with a.lock:
            held.set()
            release.wait(5)
    threading.Thread(target=hold, daemon=True).start()
    held.wait(5)
    try:
        with pytest.raises(InstrumentError, match=r"line0 at .*: line busy: held elsewhere for over 0.6 s"):
            run_together([(a, a.query_steps("A")), (b, recorded(b.query_steps("B"), done))])
    finally:
        release.set()
    assert done == ["B!"]
    assert run_together([(a, a.query_steps("A"))]) == ["A!"]  # every line let go
