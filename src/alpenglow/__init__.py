"""alpenglow: Alpine packages and OCI images without a daemon."""

__all__ = ["__version__"]

__version__ = "0.1.0"
