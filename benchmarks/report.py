"""Shared output of the benchmarks: a readable table plus machine-readable FIGURE lines.

``report(rows)`` prints ``figure | goal | measured`` and one ``FIGURE\\t...`` line per row,
which ``run_all.py`` collects into the combined table.
"""

from __future__ import annotations


def report(rows: list[tuple[str, str, str]]) -> None:
    """Print rows of (figure, goal, measured-with-unit)."""
    width = max(len(figure) for figure, _, _ in rows)
    print(f"{'figure':<{width}}  {'goal':>12}  {'measured':>14}")
    for figure, goal, measured in rows:
        print(f"{figure:<{width}}  {goal:>12}  {measured:>14}")
    for figure, goal, measured in rows:
        print(f"FIGURE\t{figure}\t{goal}\t{measured}")
