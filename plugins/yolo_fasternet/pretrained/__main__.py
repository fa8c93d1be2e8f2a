"""``python -m yolo_fasternet.pretrained``: the same command as ``yolo-fasternet weights``."""

from ..apps.weights import main

raise SystemExit(main())
