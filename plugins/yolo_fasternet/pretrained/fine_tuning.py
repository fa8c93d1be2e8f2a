"""Fine-tuning a pretrained FasterNet backbone with Ultralytics' own trainer, through its callbacks.

Two things need hooks, because the model that Ultralytics trains is not the one ``YOLO("...yaml")`` holds: for a
YAML, ``Model.train()`` hands the trainer the YAML name and the trainer builds a fresh model (``setup_model`` ->
``get_model``) inside ``_setup_train``, after which it builds the optimizer and the EMA copy. Weights loaded into
``YOLO(...).model`` beforehand are therefore dropped.

- ``LoadBackboneWeights`` runs at ``on_pretrain_routine_end``: the trained model and its EMA copy both exist by then,
  no step has been taken, and the optimizer holds the very parameter tensors that are overwritten in place. Loading
  into both keeps the EMA (which is what ``last.pt``/``best.pt`` save) from starting at random weights. A resumed run
  is left alone: its checkpoint already holds the fine-tuned backbone.
- ``FreezeBackbone`` freezes the backbone for the first N epochs, then trains it. The trainer puts every parameter in
  the optimizer whatever its ``requires_grad``, and optimizers skip parameters without a gradient, so switching
  ``requires_grad`` at ``on_train_epoch_start`` is enough to stop and restart training them. Frozen BatchNorms are
  also kept in eval mode (their statistics stay the pretrained ones), re-applied at every batch because the trainer
  calls ``model.train()`` after ``on_train_epoch_start``. Parameters that Ultralytics' own ``freeze=`` froze stay
  frozen. (``freeze=8`` alone freezes the whole yolov8-fasternet backbone, layers 0-7, for the entire run.) The
  backbone is the model's ``TimmBackbone`` layer where it has one (``yolov8n-timm-*.yaml``), else its FasterNet layers.
"""

from __future__ import annotations

from ultralytics.utils import LOGGER

from ..nn.timm_backbone import TimmBackbone
from .checkpoint_files import BackboneCheckpoint, read_backbone_checkpoint
from .loading import FasterNetBackbone, _layers, find_backbone, load_backbone_weights


def freezable_backbone(model) -> TimmBackbone | FasterNetBackbone:
    """What ``FreezeBackbone`` freezes: the model's ``TimmBackbone`` layer if it has one, else its FasterNet layers."""
    timm_backbone = next((m for m in _layers(model).modules() if isinstance(m, TimmBackbone)), None)
    return timm_backbone if timm_backbone is not None else find_backbone(model)


class LoadBackboneWeights:
    """``on_pretrain_routine_end`` callback: load FasterNet weights into the model being trained and its EMA."""

    def __init__(self, checkpoint: BackboneCheckpoint):
        self.checkpoint = checkpoint
        self.report = None  # the LoadReport of the trained model, once loaded

    def __call__(self, trainer) -> None:
        """Load into ``trainer.model`` (through DDP/compile wrappers) and ``trainer.ema.ema``, unless resuming."""
        if getattr(trainer, "resume", False):
            LOGGER.info("backbone weights: resumed run, the checkpoint's own backbone is kept")
            return
        self.report = load_backbone_weights(trainer.model, self.checkpoint)
        ema = getattr(trainer, "ema", None)  # None on DDP ranks other than 0 in older Ultralytics
        if ema is not None:
            load_backbone_weights(ema.ema, self.checkpoint)
        LOGGER.info(self.report.summary())


class FreezeBackbone:
    """Callbacks freezing the FasterNet or timm backbone for the first ``epochs`` epochs of a run, then training it."""

    def __init__(self, epochs: int):
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"freeze-backbone epochs must be an integer >= 0, got {epochs!r}")
        self.epochs = epochs
        self.params, self.norms, self.frozen = [], [], None

    def on_train_start(self, trainer) -> None:
        """Collect the backbone's parameters (minus those Ultralytics froze for good) and BatchNorms."""
        backbone = freezable_backbone(trainer.model)
        self.params = [p for p in backbone.parameters() if p.requires_grad]
        self.norms = backbone.batchnorms()

    def on_train_epoch_start(self, trainer) -> None:
        """Freeze while ``trainer.epoch < epochs``, unfreeze from then on."""
        frozen = trainer.epoch < self.epochs
        if frozen != self.frozen:
            for p in self.params:
                p.requires_grad_(not frozen)
            state = f"frozen for epochs 1-{self.epochs}" if frozen else "trainable"
            LOGGER.info(f"backbone: {len(self.params)} parameters {state} (epoch {trainer.epoch + 1})")
        self.frozen = frozen

    def on_train_batch_start(self, trainer) -> None:
        """Keep frozen BatchNorms in eval mode (the trainer switched the whole model to train mode)."""
        if self.frozen:
            for bn in self.norms:
                bn.eval()


def add_fine_tuning_callbacks(model, backbone_weights=None, freeze_epochs: int = 0):
    """Register backbone loading and/or temporary freezing on a ``YOLO`` model (or a trainer) before ``train()``.

    The weights are read and checked against the model right away (by loading them into ``model.model`` too), so a
    wrong file or variant fails here with a one-line ``BackboneWeightsError``, not after the dataset is scanned.

    Args:
        model: A ``YOLO(...)`` object (anything with ``add_callback`` and the model in ``.model``).
        backbone_weights: A checkpoint file or known name (see ``pretrained.read_backbone_checkpoint``), or None.
        freeze_epochs: Freeze the backbone for this many epochs first; 0 never freezes.

    Returns:
        The ``LoadReport`` of the check load, or None without weights.
    """
    freezer = FreezeBackbone(freeze_epochs)
    report = None
    if backbone_weights is not None:
        checkpoint = read_backbone_checkpoint(backbone_weights)
        report = load_backbone_weights(model.model, checkpoint)
        model.add_callback("on_pretrain_routine_end", LoadBackboneWeights(checkpoint))
    if freeze_epochs:
        freezable_backbone(model.model)  # fail now, not at train start, if there is no backbone to freeze
        model.add_callback("on_train_start", freezer.on_train_start)
        model.add_callback("on_train_epoch_start", freezer.on_train_epoch_start)
        model.add_callback("on_train_batch_start", freezer.on_train_batch_start)
    return report
