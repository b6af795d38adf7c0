"""Helpers shared by the fault, hostile-input, privacy and soak tests."""
