"""``exchange load``: the market-data replay and the websocket load generator at once against
the whole exchange, for a sustained run (docs/load-test.md).

``procstat`` reads each process's memory and CPU, ``report`` turns windows and samples into the
report (pure), ``run`` starts everything and drives the windows.
"""
