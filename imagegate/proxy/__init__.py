"""Registry content: the local cache composed with the upstream behind one interface."""
