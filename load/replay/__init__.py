"""``exchange replay``: market data driven through the running exchange on its own event time.

``grid`` (the venue's decimals onto our ticks and lots), ``book`` (the recorded order book),
``mirror`` (the orders that keep the engine's book equal to it, and the trades replayed
against it), ``plan`` (a file's records to steps), ``driver`` (Kafka, pace, backpressure,
results, latency) and ``summary`` (the figures). docs/replay.md says what each does and why.
"""
