"""Fixtures of the MLLP end-to-end tests (the helpers live in mllp_listener.py)."""

from mllp_listener import listener

__all__ = ["listener"]
