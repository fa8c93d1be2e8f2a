"""Train a YOLO model with the stock Ultralytics API; by default yolov8n-fasternet on a synthetic shapes dataset.

A thin entry point: the command lives in ``yolo_fasternet.apps.train`` and is also installed as
``yolo-fasternet train``. Run ``python train_yolo.py --help`` for its options.
"""

from yolo_fasternet.apps.train import main

if __name__ == "__main__":
    raise SystemExit(main())
