"""The pure matching core: one module per protocol, functions over batches, no I/O."""
