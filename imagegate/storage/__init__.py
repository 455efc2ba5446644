"""The local content store: blobs by digest, and what each repository holds.

``interfaces`` says what the rest of the gateway may ask of a store; ``layout`` draws where
a filesystem store keeps things; ``blobs`` and ``repositories`` implement both halves on a
local filesystem, writing nothing that a crash could leave half-written; ``claims`` lets
every worker process on one store fetch a blob once, the others following that write
(through ``partial`` readers, as readers in the writer's own process do).
"""
