"""symformer.cli."""
