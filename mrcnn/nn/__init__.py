"""TensorFlow / Keras graph of Mask R-CNN: one stage of the paper per module."""
