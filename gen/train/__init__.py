"""Training the digits example networks (numpy, on scikit-learn's 8 x 8 digits).
"""

from .digits import digits_split, train_digits, save_weights, TEST_FRACTION

__all__ = ["digits_split", "train_digits", "save_weights", "TEST_FRACTION"]
