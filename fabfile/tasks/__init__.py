"""The Invoke tasks, one module a noun; ``tasks.py`` at the repository root gathers them."""
