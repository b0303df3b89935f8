"""coobill: real-time billing and call gating for Asterisk PBXs."""

__version__ = "0.1.0"
