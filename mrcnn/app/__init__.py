"""The application layer: what the ``mrcnn`` command, the samples, the demo
and evaluation share, with no argument parsing and no printing of results.

    errors        UserError: a problem the user can fix (the CLI exits 2)
    weights_spec  "coco" / "last" / "imagenet" / "none" / path -> a file, and
                  loading it into a model
    model_setup   a Config from a weight file's summary, a config.json and
                  overrides; a MaskRCNN with its weights
    datasets      COCO / VIA dataset discovery in a folder or one .json
    files         input files, images as RGB, PNG and JSON outputs (atomic)
    results       detection over files (any count, no padding) and results
                  as JSON with COCO RLE masks
"""
