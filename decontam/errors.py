"""Errors of the decontam package. Each message ends with a hint of the fix."""

from __future__ import annotations

from curate.core.errors import CurateError


class DecontamError(CurateError):
    """Base class for decontamination errors the user can act on."""


class BenchmarkError(DecontamError):
    """A benchmark could not be found or loaded."""


class TrainDataError(DecontamError):
    """The training side could not be read."""


class JudgeError(DecontamError):
    """The judge is misconfigured (no endpoint, no model)."""


class CalibrationError(DecontamError):
    """A calibration file is missing, malformed or does not fit the judge."""
