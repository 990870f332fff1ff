"""The README's code as a Django project (see ``tests/test_readme.py`` for the conventions)."""
