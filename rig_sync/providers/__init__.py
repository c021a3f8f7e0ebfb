"""Provider modules, one per provider: `from rig_sync.providers import openai`.

Nothing is imported here: the registry lists this package's modules by name and imports one
the first time it is used.
"""
