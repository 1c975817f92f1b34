"""Processes around the exchange domain: the command line now, the Kafka services later."""
