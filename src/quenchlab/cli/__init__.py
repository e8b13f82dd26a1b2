"""The `quenchlab` command line (typer) and its plots.

May import anything.
"""
