"""The decision core, the simulated broker and the runners (backtest) built on them."""
