"""The HTTP edge: the registry API (``/v2/``), the token endpoint and health checks.

Handlers parse input into core types, ask one service, and render the answer; every
``RegistryError`` becomes the registry JSON envelope in exactly one place (``errors``).
``limits`` bounds what any request may send (headers, their time, bodies) before a
handler sees it.
"""
