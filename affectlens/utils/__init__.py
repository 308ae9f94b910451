"""Small helpers shared by every layer (no torch, no imports from the rest of the package)."""
