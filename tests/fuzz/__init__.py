"""Coverage-guided fuzzing (atheris, libFuzzer) of every parser that takes outside input.

Each module in ``targets/`` is one harness: ``test_one_input(data: bytes)`` feeds the bytes
to a parser and asserts properties of what comes back (only the documented errors escape,
what parses re-renders to an equal value, a name that parses obeys the distribution
spec's grammar), so a wrong answer fails as loudly as a crash. ``corpus/TARGET/`` holds a
few hand-made seeds per target; ``known.py`` lists findings another branch is fixing.

``python -m tests.fuzz TARGET`` runs one harness (``make fuzz`` wraps it); the test suite
runs each briefly in a subprocess (``test_fuzz.py``), so the instrumentation never leaks
into pytest's own process.
"""
