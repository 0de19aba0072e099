"""Causal features: indicator and smart-money kernels, multi-timeframe context, the feature matrix.

Every kernel family is a step function over one closed candle with explicit state, so the batch
path (a loop over the step) and the streaming path (one step per candle) are the same arithmetic.
"""
