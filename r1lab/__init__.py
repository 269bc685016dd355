"""r1lab: train reasoning models the way DeepSeek-R1 was trained."""

__version__ = "0.1.0"
