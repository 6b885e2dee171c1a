"""The nodes side of the main job: facts, prepare, report."""
