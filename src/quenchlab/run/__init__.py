"""One run under the RunEngine and how it ended (done, interrupted, tripped, failed), told the
same way to single runs and libraries.

May import: `reactor`, `record`, `plans` and everything below them.
"""
