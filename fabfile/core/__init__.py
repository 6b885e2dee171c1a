"""The layer every task stands on: inventory, SSH sessions, change steps and per-host results."""
