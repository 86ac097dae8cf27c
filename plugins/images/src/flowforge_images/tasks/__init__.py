"""Image tasks: generation with CFG sweeps, restoration with baselines, editing by inversion."""
