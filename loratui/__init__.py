"""loratui: the CLI and the Textual dashboard. Talks to the engine through specs, run processes,
event streams and library.db."""

__version__ = "0.1.0"
