"""Errors a user can act on.  The CLI prints them without a traceback; the demo shows them in the page."""


class AppToolError(Exception):
    """Base of every error whose message alone tells the user what to fix."""


class InputError(AppToolError):
    """A file or value handed to predict/demo is unusable (names the file and what was expected)."""


class DataError(AppToolError):
    """A data set on disk does not follow its layout (names the file, line or field)."""


class ConfigError(AppToolError):
    """A command-line option or config value is invalid."""


class BundleError(AppToolError):
    """A bundle directory or ONNX file is missing, corrupt, unsafe or for another task."""


class ExportError(AppToolError):
    """Export failed its checks (onnx.checker or torch/ONNX Runtime parity)."""
