"""KerasTuner glue: LayerNASOracle, LayerNASTuner and the hypermodel."""
from keras_layernas.tuner._choices import declare_architecture
from keras_layernas.tuner._hypermodel import LayerNASHyperModel
from keras_layernas.tuner._oracle import LayerNASOracle, LayerNASTuner, TrialBudgetWarning, first_in_target_trial

__all__ = ["LayerNASHyperModel", "LayerNASOracle", "LayerNASTuner", "TrialBudgetWarning",
           "declare_architecture", "first_in_target_trial"]
