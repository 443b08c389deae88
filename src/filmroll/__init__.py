"""filmroll: connect Instagram accounts, keep their tokens alive, sync their media, serve them to websites."""

__version__ = "0.1.0"
__all__ = ["__version__"]
