"""The errors the package raises for bad input, in a module of their own so that any module can
raise them without importing the one that validates (no import cycles)."""


class ParamError(ValueError):
    """A parameter file or value is invalid; the message names the key."""
