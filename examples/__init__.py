"""Example apps built on rig_sync (not installed with the package; run them from the repository root)."""
