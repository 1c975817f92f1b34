"""Load and replay tooling: the order-stream format, its generator and the matching benchmark."""
