"""An independent MAdds count from TensorFlow's own graph profiler.

Used to cross-check :func:`count_madds` (tests) and to time it against
(benchmarks). TF registers FLOPs = 2 x MAdds for its matrix ops; summing only
the ops the convention counts makes the two numbers directly comparable.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras

# The TF op types that carry the multiply-adds of conv and dense layers.
COUNTED_OPS = ("Conv2D", "DepthwiseConv2dNative", "MatMul")


def tf_profiler_madds(
    model: keras.Model,
    input_shape: Optional[Sequence[int]] = None,
    op_types: Sequence[str] = COUNTED_OPS,
) -> int:
    """MAdds of ``model`` per TF's graph profiler, over ``op_types`` only.

    Traces the model at batch size 1, freezes the variables into constants
    (the profiler needs static shapes) and sums ``float_ops / 2`` of the
    requested op types.

    Args:
        model: a single-input Keras model on the TensorFlow backend.
        input_shape: input size without the batch dimension; defaults to the
            model's own, which must then be fully known.
        op_types: TF op types to sum.

    Returns:
        The MAdds TF attributes to those ops.

    Raises:
        ValueError: if the input size is unknown and ``input_shape`` is None.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    shape = tuple(input_shape) if input_shape is not None else tuple(model.inputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(
            "TF's profiler needs a static input size; pass one, e.g. "
            f"input_shape=(224, 224, 3). Received: input_shape={input_shape} for a "
            f"model whose input is {tuple(model.inputs[0].shape)}"
        )
    forward = tf.function(lambda x: model(x, training=False))
    concrete = forward.get_concrete_function(
        tf.TensorSpec((1, *shape), model.inputs[0].dtype)
    )
    graph = convert_variables_to_constants_v2(concrete).graph
    options = (
        tf.compat.v1.profiler.ProfileOptionBuilder(
            tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        )
        .with_empty_output()
        .build()
    )
    report = tf.compat.v1.profiler.profile(graph, cmd="op", options=options)
    # The "op" view nests one node per op type; walk the whole chain.
    flops_by_type: dict[str, int] = {}
    pending = list(report.children)
    while pending:
        node = pending.pop()
        flops_by_type[node.name] = flops_by_type.get(node.name, 0) + node.float_ops
        pending.extend(node.children)
    return sum(flops_by_type.get(op, 0) for op in op_types) // 2
