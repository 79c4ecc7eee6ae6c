"""Everything in the labeling app that writes, one module per sub-domain."""
