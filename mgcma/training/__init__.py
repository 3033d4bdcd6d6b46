"""The training layer: what a run is told (config.py), which records train, select and test (protocols.py),
the loop (loop.py), one step and its evaluation (steps.py), cached partial fine-tuning
(partial_finetuning.py), a run's files (run_files.py), the ablation settings and table (ablation.py),
and fitting a statistics head (stats_head.py). Nothing in inference imports it."""
