"""Neural networks shared by the deep baselines (import torch; never imported by galbench itself)."""
