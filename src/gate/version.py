"""gate's version, in a leaf module so the lowest layers can name it without importing the package face."""

__version__ = "0.2.0"
