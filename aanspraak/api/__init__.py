"""What every API of the hub shares: the error contract, the caller, scope permissions."""
