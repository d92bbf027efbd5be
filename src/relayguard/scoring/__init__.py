"""Pure scoring: hits + weights + group caps + thresholds -> verdict and action."""
