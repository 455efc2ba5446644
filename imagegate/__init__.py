"""imagegate: a registry gateway that enforces Docker Hub's Image Access Management.

The layout is the architecture:

- ``core``      pure rules (names, digests, scopes, categories, policy, errors); no I/O.
- ``storage``   the content-addressed store on disk.
- ``upstream``  the client for the registry we pull through (Docker Hub by default).
- ``proxy``     local cache composed with the upstream behind one interface.
- ``auth``      passwords, access tokens, registry JWTs.
- ``db``        engine, tables and migrations.
- ``services``  orchestration per domain: accounts, organizations, image access.
- ``http``      the registry API, the token endpoint and health checks.
- ``cli``       thin commands over the services.
- ``bootstrap`` the one place that builds the objects and wires them together.
"""

__version__ = "0.1.0"
