"""The training layer: what a run is told (config.py), which records train, select and test (protocols.py),
the loop (loop.py), one step and its evaluation (steps.py), and a run's files (run_files.py)."""
