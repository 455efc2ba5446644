"""The pure core: names, digests, scopes, categories, the access policy and errors.

Nothing in this package performs I/O, so every rule here is tested exhaustively
without a server (``tests/core/test_purity.py`` checks the imports).
"""
