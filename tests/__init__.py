"""The test suite is a package so that conftest.py can import its helpers from tests/support/
relatively, wherever pytest is started (see conftest.py)."""
