"""What admins deploy to other machines: Docker Desktop's sign-in files and the client
configuration that routes Docker Hub pulls through the gateway.

``desktop`` and ``clients`` are pure renderers (arguments in, bytes or text out);
``files`` writes a rendered file into place the way an administrator's tool must.
"""
