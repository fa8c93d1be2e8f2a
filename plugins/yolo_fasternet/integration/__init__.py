"""The Ultralytics integration: the module table, how it is registered into an unmodified Ultralytics, bundled-YAML
lookup, model-YAML errors by layer, the ``fuse()`` hook that selects inference forms, and old checkpoint paths.

The autoload hook that runs all of this in every Python process is ``yolo_fasternet_autoload`` (beside the package,
imported by ``yolo_fasternet.pth`` at interpreter start-up).
"""
