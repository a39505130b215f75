"""Services of the shared app: functions that change state."""
