"""The app's panels: each owns its widgets and talks in signals or plain data."""
