"""Backbone ablations: train and validate several model YAMLs under identical settings; one table, one plot.

A thin entry point: the command lives in ``yolo_fasternet.apps.ablate`` and is also installed as
``yolo-fasternet ablate``. Run ``python ablate_yolo.py --help`` for its options.
"""

from yolo_fasternet.apps.ablate import main

if __name__ == "__main__":
    raise SystemExit(main())
