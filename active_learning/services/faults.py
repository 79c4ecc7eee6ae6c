"""Fault injection lives in `workbench.core.faults` (both apps use it); kept importable here."""

from workbench.core.faults import fault_point

__all__ = ["fault_point"]
