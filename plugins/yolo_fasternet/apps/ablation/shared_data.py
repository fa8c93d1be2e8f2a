"""What the runs of an ablation share, prepared once before any of them starts: the dataset's label caches.

Ultralytics keeps a dataset's parsed labels in ``labels/<split>.cache`` next to the data and rebuilds it whenever it
is missing or stale. Two runs that start together on a dataset without a valid cache would both build it, and one
could read it while the other replaces it ("No such file or directory: .../labels/train.cache"), with ``--jobs 2``
as with Ray. So the ablation builds every split's cache here, in its own process, before it dispatches a run; the
runs then only read it. Where the dataset folder is read-only (a shared, mounted dataset), Ultralytics saves no cache
(it says so) and every run parses the labels in memory on its own: nothing is written next to the data, so there is
nothing to race on either.
"""

from __future__ import annotations

import contextlib
import io


def prepare_label_caches(data: str, task: str) -> list[str]:
    """Build (or check) the label cache of every split of detection-family dataset ``data``; return the splits.

    Classification datasets keep no label cache; nothing to do for them.
    """
    if task == "classify":
        return []
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(data, autodownload=False)
    done = []
    for split in ("train", "val", "test"):
        if not info.get(split):
            continue
        with contextlib.redirect_stdout(io.StringIO()):  # Ultralytics' own scan progress; the runs print it again
            YOLODataset(img_path=info[split], data=info, task=task, augment=False, prefix=f"{split}: ")
        done.append(split)
    return done
