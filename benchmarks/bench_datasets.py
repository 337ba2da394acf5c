"""Loading the built-in data."""

from lightvision.datasets import load_digits, load_fashion_mnist

from .common import CONFIG


class FashionMNISTSuite:
    params = ["train", "test"]
    param_names = ["split"]

    def time_load(self, split):
        load_fashion_mnist(split, source=CONFIG["fashion_source"])

    def peakmem_load(self, split):
        load_fashion_mnist(split, source=CONFIG["fashion_source"])


class DigitsSuite:
    def time_load(self):
        load_digits()
