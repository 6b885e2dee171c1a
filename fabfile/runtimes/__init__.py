"""Pure editors for container runtime and kubelet configuration.

Each function takes the current text of a file (as read from a node) and the facts about the
node (versions, the private registry), and returns the new text with what changed and why. None
of them runs a command or opens a connection; the tasks do that around them.
"""
