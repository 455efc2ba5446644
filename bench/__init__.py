"""Benchmarks of imagegate against a real peer (CNCF distribution) measured in the same run.

Not tests: nothing here passes or fails on a number. Each case runs the same client
against imagegate and against a baseline on the same machine and reports the ratio,
which survives a change of hardware far better than an absolute figure. See README.md.
"""
