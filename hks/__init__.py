"""hks: distributed hyperparameter and architecture search for Keras CNNs, driven by hyperopt."""

import os

# TensorFlow's C++ start-up chatter hides the progress lines users read; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
