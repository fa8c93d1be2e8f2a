"""Real-time detection with a (FasterNet) YOLO model on a webcam, stream, video file, image or folder of images.

A thin entry point: the command lives in ``yolo_fasternet.apps.detect`` and is also installed as
``yolo-fasternet detect``. Run ``python detect_yolo.py --help`` for its options.
"""

from yolo_fasternet.apps.detect import main

if __name__ == "__main__":
    raise SystemExit(main())
