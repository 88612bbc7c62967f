"""What makes the models: training, cross-validation, distillation, export, card scoring and the checks.

The app never imports this package (tests/test_layers.py holds it to that); it imports the serving
modules of cnn_model, never the other way round. The run records it writes and reads (folds,
out-of-fold predictions, soft targets, logs) are data in model_runs/ at the repository's top level.
"""
