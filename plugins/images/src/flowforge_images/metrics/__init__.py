"""Image metrics in the feature space of in-repo LeNet classifiers, likelihood and restoration."""
