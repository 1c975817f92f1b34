"""``exchange drill SCENARIO``: a liquidation-cascade drill through the real system.

A scenario file (``scenario.py``) names a market, a price path (``path.py``: a recorded crash or
a scripted one), a population of leveraged accounts (``population.py``), the liquidity and how
it thins (``liquidity.py``), the insurance fund and the time compression. ``runner.py`` starts
the embedded broker and every service from a clean start, sets the population up, drives the
path as index ticks, and follows the logs (``recorder.py``); ``checks.py`` judges the
invariants and ``report.py`` draws the cascade. docs/drills.md tells how to read the result.
"""
