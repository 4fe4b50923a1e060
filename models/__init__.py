"""Model recipes: plain-torch architectures, export scripts and model cards (not part of the wheel)."""
