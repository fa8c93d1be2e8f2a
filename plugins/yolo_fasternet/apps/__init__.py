"""The commands: train, detect (with its video sources and live capture), ablate, zoo, weights, synthetic data.

Each module has a ``main(argv)``; ``yolo_fasternet.cli`` dispatches ``yolo-fasternet <command>`` to it, and the
top-level ``train_yolo.py``, ``detect_yolo.py`` and ``ablate_yolo.py`` call it directly.
"""
