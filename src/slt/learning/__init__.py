"""The learner: scores for a model's confidence and a strategy's edge, and the training loop."""
