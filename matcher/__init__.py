"""matcher: privacy-preserving suspect matching between agencies (PSI over gRPC).

Packages by layer, each importing only those below it (checked by ``make lint``):
``identity`` (records -> normalised fields -> tokens), ``protocols`` (pure math),
``sessions`` (protocol rules per role, no transport), ``storage`` (keys, setup cache,
session log), ``server`` (the responder's gRPC edge), ``audit`` (privacy officer's
tools), ``quality`` (synthetic data, evaluation); ``cli`` wires them together.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("matcher")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
