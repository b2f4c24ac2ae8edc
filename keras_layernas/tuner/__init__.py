"""KerasTuner glue: LayerNASOracle and the hypermodel."""
