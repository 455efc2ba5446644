"""Helpers shared by tests: a real upstream registry and small, real images built in Python.

Nothing here imports pytest, so fixtures anywhere (unit, contract or end-to-end tests) can
use these as plain classes and functions.
"""
