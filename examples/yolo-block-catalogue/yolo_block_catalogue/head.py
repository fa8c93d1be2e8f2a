"""A lighter detection head: Ultralytics' Detect with a depthwise-separable box branch (a custom head, like Detect)."""

from __future__ import annotations

import copy

from torch import nn
from ultralytics.nn.modules import Conv, DWConv
from ultralytics.nn.modules.head import Detect


class LiteDetect(Detect):
    """Detect whose box branch is depthwise 3x3 + pointwise 1x1 instead of two dense 3x3 convs per level.

    A subclass of Detect registered like ``Detect``: parse_model appends the same arguments it appends for Detect in
    the installed Ultralytics (``ch`` in 8.3; ``reg_max, end2end, ch`` in 8.4), so YAML args are Detect's: ``[nc]``.
    Loss, decoding, export and bias initialisation are Detect's own.
    """

    yolo_like = "Detect"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        ch = kwargs.get("ch", args[-1] if args else ())
        hidden = self.cv2[0][-1].in_channels
        self.cv2 = nn.ModuleList(
            nn.Sequential(DWConv(x, x, 3), Conv(x, hidden, 1), nn.Conv2d(hidden, 4 * self.reg_max, 1)) for x in ch
        )
        if hasattr(self, "one2one_cv2"):  # end-to-end heads keep a copy of the box branch
            self.one2one_cv2 = copy.deepcopy(self.cv2)
