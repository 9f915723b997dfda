"""Tests of the operations, one file per family."""
