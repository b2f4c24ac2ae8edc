"""Model surgery: channel-dependency graph -> search space -> materialize(arch)."""
from keras_layernas.surgery.space import SearchLayer, SearchSpace

__all__ = ["SearchLayer", "SearchSpace"]
