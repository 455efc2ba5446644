"""Registry content for pulls, and the vocabulary hosted repositories share with it.

The pull-through cache (``service.ProxyContent``: the local store in front of the
upstream, with ``manifests``, ``tagmemory``, ``blobs`` and ``singleflight``) and
``unmirrored``, what an organization's name that is neither hosted nor mirrored serves
(nothing). ``interfaces`` (``RegistryContent``), ``descriptors``, ``ranges`` and
``referrers`` are used by hosted repositories too.
"""
