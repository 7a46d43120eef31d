"""jamhost: a multi-tenant runtime for JAM services."""

__version__ = "0.1.0"
