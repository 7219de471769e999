"""Benchmarks (not tests): each prints figures measured in the same run."""
