"""Helper modules shared by the tests (not tests themselves, not conftest files).

Imported as ``tests.support.<module>``: pyproject's ``pythonpath`` puts the repository root on
``sys.path``. Subprocesses started from the repository root reach them the same way (the fork server
imports ``tests.support.confinement_probe``); ``crashing_worker.py`` is run as a script.
"""
