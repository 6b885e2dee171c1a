"""Mirroring images into the private registry: what to copy (plan) and the copy run (run)."""
