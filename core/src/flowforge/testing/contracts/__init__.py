"""Contract mixins: one pytest class per component kind, subclassed by implementations' tests."""
