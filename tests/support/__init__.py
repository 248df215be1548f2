"""Helpers behind the fixtures of tests/conftest.py.

Imported by conftest.py only: test modules ask for the fixtures and never import these
modules (nor one another).
"""
