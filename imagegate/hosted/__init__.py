"""Hosted repositories: an organization's own images, pushed to and served from here.

They share the content store with the pull-through cache (blobs are stored once by
digest) but keep their own repository metadata: upload sessions, manifests, tags, and
which blobs belong to which repository.
"""
