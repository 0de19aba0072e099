"""Trading rules as pure kernels: exits, sizing, fees, margin and liquidation."""
