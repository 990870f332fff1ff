"""The README's code as a Django project.

See ``tests/project/test_readme.py`` for the conventions.
"""
