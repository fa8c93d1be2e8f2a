"""The machinery of the ``detect`` command; the command itself is ``yolo_fasternet.apps.detect``.

Dependencies point one way, from the command down:

    detect (the command) -> runtime_choice (which runtime runs: PyTorch or an export, timed) -> export_cache
                                                                                           -> inference_threads
    detect -> video_source (what --source names), live_capture (the newest frame of a live source)

No module here imports the command.
"""
