"""Tests of the benchmark's own pieces (bench/): the throttled link, /proc readings, and
the distribution pull-through proxy it measures against. No timings are asserted."""
