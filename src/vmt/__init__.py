"""vertex-model-training: the training loop between Labelbox and a detector backend."""

__version__ = "0.1.0"
