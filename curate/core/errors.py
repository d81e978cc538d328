"""Library exceptions. Each carries a hint of the fix; the CLIs print them as one line."""


class CurateError(Exception):
    """Base class for errors the user can act on."""


class ConfigError(CurateError):
    """A configuration value is invalid; raised before any data is read."""


class LakeError(CurateError):
    """The lake is missing, locked or inconsistent."""


class MissingDependencyError(CurateError):
    """An optional dependency is not installed; the message names the pip install."""


class LLMError(CurateError):
    """A served model could not be reached or kept answering badly."""
