"""Base exception of the appliance: every error an operator may see derives from it.

Messages say what happened and what to do next; they never carry images, embeddings or keys.
"""


class ConsentGateError(Exception):
    """An error with an operator-facing message (printed without a traceback by the CLIs)."""
