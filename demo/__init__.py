"""The embedded demo (`python -m edge demo`): composes the daemon, the gate controller, central."""
