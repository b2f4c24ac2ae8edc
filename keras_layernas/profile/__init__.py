"""MAdds / params of Keras models."""
