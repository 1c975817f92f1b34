"""The exchange domain: pure, deterministic, no I/O, no clock.

Services feed it commands and publish the events it returns.
"""
