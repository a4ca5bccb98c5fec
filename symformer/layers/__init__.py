"""symformer.layers."""
