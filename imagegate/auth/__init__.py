"""Who is asking: passwords and personal access tokens, and the registry's bearer tokens.

``passwords`` turns secrets people type into what the database stores (argon2 hashes,
SHA-256 digests of access tokens); ``tokens`` issues and verifies the JWTs registry
clients present; ``cache`` remembers what verified, by digest and within a byte
budget. None of them touches the database; ``services.accounts`` does.
"""
