"""The backbone ablation's machinery; the command itself is ``yolo_fasternet.apps.ablate``.

Dependencies point one way, from the command down to a single run:

    ablate (the command) -> executors (where runs train) -> worker -> runs (one run's folder, training, results)
                                                                          -> records (per-image evaluation records)
    ablate -> report (tables, plot) -> bootstrap (paired bootstrap on records), stats (seed-level t-interval)
    ablate -> presets

No module here imports the command, and ``runs``/``records`` import nothing above them.
"""
