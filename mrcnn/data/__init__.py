"""Data: targets, input pipeline, augmentation and dataset classes."""
