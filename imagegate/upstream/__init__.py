"""The upstream registry client: the one place that speaks HTTP to the upstream.

``client.UpstreamClient`` covers what a pull needs (manifests, blobs, tags, referrers);
``auth`` answers the upstream's challenges (Basic, or Docker's Bearer token flow);
``errors`` turns the upstream's failures into the gateway's registry errors, once, here.
"""
