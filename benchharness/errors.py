"""The one exception hierarchy of the harness.

Errors from libraries (torch, onnxruntime, paramiko, adb, ...) are translated into these at the
boundary where they occur, so the CLI can print ``Type: message`` and exit 1 with no traceback.
Every message says what went wrong *and* what the user can do about it.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every expected failure; the CLI prints it as ``Type: message`` and exits 1."""


class UsageError(HarnessError):
    """The user asked for something that cannot be done as asked (bad option value, ...)."""


class UnknownModelError(HarnessError):
    """A model name is neither in the zoo, a ``module:function``, nor an existing model file."""


class ModelFileError(HarnessError):
    """A model file given by path is missing, unreadable or corrupt."""


class ExportError(HarnessError):
    """Converting a torch model to ONNX or TFLite failed."""


class VerificationError(ExportError):
    """An exported artifact disagrees numerically with the PyTorch model beyond tolerance."""


class CostError(HarnessError):
    """Counting MACs, params or bytes of a model or graph failed."""


class DeviceProfileError(HarnessError):
    """A device profile is missing or malformed; the message names file, field and expectation."""


class TransportError(HarnessError):
    """Talking to a device failed (connection, command, file transfer)."""


class DeviceUnreachableError(TransportError):
    """The device cannot be reached at all (refused, timed out, not listed by adb, ...)."""


class HostKeyError(TransportError):
    """An SSH host key is unknown or has changed; never accepted silently."""


class CommandTimeoutError(TransportError):
    """A command on the device ran past its timeout and was killed."""


class DeviceLockError(HarnessError):
    """Another job (or another ``bench`` process) holds the device."""


class RunnerError(HarnessError):
    """A runner on the device failed, or printed something that is not a valid result."""


class ParseError(HarnessError):
    """A native tool's log or profile is not what it claims to be; the message names the line."""


class ResultsError(HarnessError):
    """A results folder or CSV is missing, unreadable, or of an unknown schema."""


class ConstraintError(HarnessError):
    """A model does not fit a device's constraints (operators, model or activation bytes)."""


class FarmError(HarnessError):
    """The device farm cannot do what was asked: no scheduler, or no worker serves a device."""


class SchedulerLostError(FarmError):
    """The coordinator lost its Dask scheduler mid-run; what finished is kept for --resume."""


class PredictorError(HarnessError):
    """A latency predictor cannot be built, read or used as asked (missing, damaged, mismatched)."""
