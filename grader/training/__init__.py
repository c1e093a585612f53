"""Trusted training and its data: the shards (synthetic, imported, fetched), the decoded cache,
the device and precision, the training loop, precise BatchNormalization and sample predictions."""
