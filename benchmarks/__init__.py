"""Measured claims: each script prints what it measured, with the command and the machine."""
