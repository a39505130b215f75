"""The HTTP API of the entitlements app."""
