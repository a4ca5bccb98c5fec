"""symformer.integrations."""
