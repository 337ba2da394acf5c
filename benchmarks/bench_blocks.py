"""Every registered block (:data:`lightvision.registry.BLOCKS`) at its ``bench_params`` on a
batch of 8 inputs of its ``input_shape``: forward time, peak memory of a training step, and
its cost (trainable parameters, real MACs, binary/ternary operations) per input.
"""

import torch

from lightvision.metrics import count_ops, count_params
from lightvision.registry import BLOCKS

from .common import SEED

NAMES = BLOCKS.list()
BATCH = 8


def _build(name):
    entry = BLOCKS.get(name)
    torch.manual_seed(SEED)
    block = entry.create(**entry.bench_params)
    x = torch.randn(BATCH, *entry.meta["input_shape"],
                    generator=torch.Generator().manual_seed(SEED))
    return block, x


class BlockSuite:
    params = NAMES
    param_names = ["block"]

    def setup(self, name):
        self.block, self.x = _build(name)
        self.block.eval()

    def time_forward_batch_8(self, name):
        with torch.inference_mode():
            self.block(self.x)

    def peakmem_train_step_batch_8(self, name):
        """Forward and backward (the input requires grad: some blocks have no parameters)."""
        self.block.train()
        self.block(self.x.clone().requires_grad_(True)).square().mean().backward()

    def track_trainable_params(self, name):
        return count_params(self.block).trainable

    track_trainable_params.unit = "parameters"

    def track_macs_per_input(self, name):
        """Real multiply-accumulates per input (FLOPs = 2 x MACs)."""
        return count_ops(self.block, self.x).macs // BATCH

    track_macs_per_input.unit = "MACs"

    def track_binary_and_ternary_ops_per_input(self, name):
        """Operations of fixed binary/ternary weights (additions), counted apart from MACs."""
        ops = count_ops(self.block, self.x)
        return (ops.binary_ops + ops.ternary_ops) // BATCH

    track_binary_and_ternary_ops_per_input.unit = "operations"
