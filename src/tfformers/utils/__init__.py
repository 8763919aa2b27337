"""Helpers that are not about models: `logging`, the one verbosity knob."""
