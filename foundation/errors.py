"""Base exception of the appliance: every error an operator may see derives from it.

Messages say what happened and what to do next; they never carry images, embeddings or keys.
"""


class ConsentGateError(Exception):
    """An error with an operator-facing message (printed without a traceback by the CLIs)."""


class KeyFileError(ConsentGateError):
    """A CurveZMQ key file is missing, unreadable or of the wrong kind."""


class WireError(ConsentGateError):
    """A message between processes does not follow its wire schema."""


class SchemaError(WireError):
    """A message does not follow its declared schema (or declares an unknown one)."""
