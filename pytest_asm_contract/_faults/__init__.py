"""Fault injection: one target layer per backend, and the policies that decide what fails."""
