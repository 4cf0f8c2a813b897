"""leeml: Hung-yi Lee's Machine Learning course, reproduced with measured evidence in JAX/Flax."""

__version__ = "0.1.0"
