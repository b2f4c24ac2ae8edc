"""LayerNAS search core in plain Python: no TensorFlow or Keras import."""
