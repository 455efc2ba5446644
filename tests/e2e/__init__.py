"""End-to-end tests: real upstream registry, imagegate serve, real skopeo and podman."""
