"""symformer.train."""
