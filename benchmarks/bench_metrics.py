"""Cost of the embedded-vision metrics themselves, on the reference CNN at batch 1."""

import torch

import lightvision
from lightvision.metrics import count_ops, peak_activation_bytes, profile


class ProfileSuite:
    def setup(self):
        torch.manual_seed(0)
        self.model = lightvision.create_model("small_cnn").eval()
        self.x = torch.randn(1, 1, 28, 28)

    def time_count_ops(self):
        count_ops(self.model, self.x)

    def time_peak_activation_bytes(self):
        peak_activation_bytes(self.model, self.x)

    def time_profile_without_timing(self):
        profile(self.model, self.x, timing=False)
