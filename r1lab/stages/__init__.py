"""Training and data stages; each is a ``main(config)`` over the library."""
