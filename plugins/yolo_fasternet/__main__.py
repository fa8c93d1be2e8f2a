"""``python -m yolo_fasternet``: the ``yolo-fasternet`` command."""

from .cli import main

raise SystemExit(main())
