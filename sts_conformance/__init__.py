"""Conformance suite for SUSE Observability (StackState) service tokens: the harness."""

__version__ = "0.1.0"
