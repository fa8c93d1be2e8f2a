"""Model compression: structured channel pruning (``channel_pruning``); ``apps.prune`` is its command."""
