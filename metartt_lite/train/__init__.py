"""Learning: cached features, tracking-simulation episodes, losses (Eq. 8), the inner loop (Eqs. 2–6),
meta-training (Eq. 7), pretraining, and pruning-network training (Eqs. 9–12)."""
