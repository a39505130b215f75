"""Read-only queries of the entitlements app."""
