"""``batch_slice``: Matterport's helper that runs a function image by image.

Kept for user code written against Matterport's ``utils.batch_slice``. The
package's own graph is batched by construction and does not use it.
TensorFlow is imported inside the function only, so ``mrcnn.core`` stays
free of a TensorFlow import.
"""

import numpy as np


def batch_slice(inputs, graph_fn, batch_size, names=None):
    """Split inputs into per-image slices, run graph_fn on each, stack results.

    Args:
        inputs: a tensor / array or list of them, each [batch, ...].
        graph_fn: function of one slice of every input (``inputs[k][i]``),
            returning a tensor/array or a list/tuple of them.
        batch_size: number of slices to run (the batch size).
        names: optional list of names, one per output (TF op names).

    Returns:
        One stacked result [batch, ...] per output of graph_fn (a single
        value when graph_fn returns one). Results are numpy arrays when
        graph_fn returned only numpy values, TF tensors otherwise.
    """
    if not isinstance(inputs, list):
        inputs = [inputs]

    outputs = []
    for i in range(batch_size):
        inputs_slice = [x[i] for x in inputs]
        output_slice = graph_fn(*inputs_slice)
        if not isinstance(output_slice, (tuple, list)):
            output_slice = [output_slice]
        outputs.append(output_slice)
    # [batch][outputs] -> [outputs][batch]
    outputs = list(zip(*outputs))

    if names is None:
        names = [None] * len(outputs)

    if all(isinstance(o, (np.ndarray, np.generic, int, float, bool))
           for output in outputs for o in output):
        result = [np.stack(o, axis=0) for o in outputs]
    else:
        import tensorflow as tf
        result = [tf.stack(o, axis=0, name=n) for o, n in zip(outputs, names)]
    if len(result) == 1:
        result = result[0]
    return result
