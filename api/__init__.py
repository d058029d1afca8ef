"""The edge: command line, HTTP API, web page and evaluation. Only this package speaks JSON, argv and stdout."""

from models.exports import lazy_exports

_PUBLIC = {"create_app": "api.app", "main": "api.cli", "evaluate": "api.evaluate", "serve": "api.server"}
__all__ = sorted(_PUBLIC)
__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC)
