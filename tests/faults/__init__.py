"""The fault-injection harness (``harness.py``) and its cases, one module per stage; ``scripts/fault_injection.py``
runs them and ``tests/test_fault_injection.py`` runs the fast ones."""
