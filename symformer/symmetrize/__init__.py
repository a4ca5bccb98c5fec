"""symformer.symmetrize."""
