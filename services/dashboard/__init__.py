"""The ops dashboard (port 8000): event flow, lag, dead letters, waitlists, health."""
